"""The catalog: everything the plugins register, read one way for every hook.

Each kind of thing a plugin adds (architectures, trainers, evaluators, datasets, weight
converters, feature extractors, model cards) is the result of one hook, and every kind is
read by the same rules:

- **one value check**: each plugin's hook is called in its own guard, and what it returns is
  checked against the kind (a mapping of names to ``Generator`` classes, ``Trainer`` classes,
  ``DatasetSpec``\\ s of that name, ...; a list of valid cards). A plugin whose hook raises or
  returns something else is quarantined (:meth:`ZooPluginManager.quarantine`), and the hook
  is read again without it;
- **one cache**, keyed on the set of plugins: a kind is read once, and again after a plugin is
  registered, unregistered or quarantined;
- **one duplicate rule**: a name that two sources claim raises
  :class:`~zoo_core.errors.DuplicateRegistrationError` naming both; only that name fails, the
  sources' other names keep working;
- **one missing-name error**: a name no plugin registers raises the kind's
  :class:`~zoo_core.errors.UnknownNameError` with the closest names, the known ones and the
  plugins that failed to load and may define it; where the distribution that should provide
  it is known (a card's ``plugin``), :class:`~zoo_core.errors.PluginError` (it failed, with
  the cause) or :class:`~zoo_core.errors.PluginMissingError` (not installed, or not enabled).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from zoo_core.card import ModelCard, parse_card
from zoo_core.dataset import DatasetSpec
from zoo_core.errors import (
    DuplicateRegistrationError,
    PluginError,
    PluginMissingError,
    RegistryError,
    UnknownArchitectureError,
    UnknownDatasetError,
    UnknownExtractorError,
    UnknownFormatError,
    UnknownMetricError,
    UnknownNameError,
    UnknownTrainerError,
    ZooError,
)
from zoo_core.evaluator import Evaluator
from zoo_core.plugin_manager import ZooPluginManager, call_hook, get_plugin_manager

T = TypeVar("T")


class PluginFault(Exception):
    """What a plugin's hook returned does not fit its kind: the plugin is quarantined."""


# ----------------------------------------------------------------------------- kinds
@dataclass(frozen=True)
class Kind:
    """One hook's contributions.

    Attributes:
        hook: the hook's name (``zoo_architectures``).
        noun: what one entry is called in messages (``architecture``).
        unknown: the error a name no plugin registers raises.
        check: ``check(name, value)`` raises :class:`PluginFault` saying why a value of a
            mapping hook does not fit (``None``: a list hook, read by ``read``).
        read: for a list hook, ``read(result, source)`` -> name -> value, raising
            :class:`PluginFault`.
        label: how a name is shown in the list of known names (``timm:<model name>``).
    """

    hook: str
    noun: str
    unknown: type[UnknownNameError] | None = None
    check: Callable[[str, Any], None] | None = None
    read: Callable[[Any, str], dict[str, Any]] | None = None
    label: Callable[[str, Any], str] = lambda name, value: name


def _subclass(base: Callable[[], type]) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        cls = base()
        if not (isinstance(value, type) and issubclass(value, cls)):
            raise PluginFault(f"gave {name!r} a {_what(value)}, not a subclass of {cls.__name__}")

    return check


def _generator() -> type:
    # Deferred: the Generator interface imports torch, which `zoo list` must not.
    from zoo_core.generator import Generator

    return Generator


def _trainer() -> type:
    # Deferred: the Trainer interface imports torch, which `zoo list` must not.
    from zoo_core.trainer import Trainer

    return Trainer


def _named_spec(spec_type: Callable[[], type]) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        cls = spec_type()
        if not isinstance(value, cls):
            raise PluginFault(f"gave {name!r} a {_what(value)}, not a {cls.__name__} object")
        if value.name != name:
            raise PluginFault(f"gave the {cls.__name__} {value.name!r} as {name!r}")

    return check


def _extractor_spec() -> type:
    # Deferred: zoo_core.extractor imports torch, which `zoo list` must not.
    from zoo_core.extractor import ExtractorSpec

    return ExtractorSpec


def _callable(name: str, value: Any) -> None:
    if not callable(value):
        raise PluginFault(f"gave {name!r} a {_what(value)}, not a callable converter")


def _cards(result: Any, source: str) -> dict[str, ModelCard]:
    if not isinstance(result, list | tuple):
        raise PluginFault(f"{source}: zoo_models returned {_what(result)}, not a list")
    cards = {}
    for data in result:
        try:
            card = parse_card(data, source)
        except RegistryError as exc:
            raise PluginFault(str(exc)) from None
        if card.id in cards:
            raise PluginFault(f"{source}: zoo_models returned the model id {card.id!r} twice")
        cards[card.id] = card
    return cards


def _what(value: Any) -> str:
    return type(value).__name__


ARCHITECTURES = Kind(
    "zoo_architectures", "architecture", UnknownArchitectureError, _subclass(_generator)
)
TRAINERS = Kind("zoo_trainers", "trainer", UnknownTrainerError, _subclass(_trainer))
EVALUATORS = Kind("zoo_evaluators", "metric", UnknownMetricError, _subclass(lambda: Evaluator))
DATASETS = Kind("zoo_datasets", "dataset", UnknownDatasetError, _named_spec(lambda: DatasetSpec))
CONVERTERS = Kind("zoo_weight_converters", "weights format", UnknownFormatError, _callable)
EXTRACTORS = Kind(
    "zoo_extractors",
    "feature extractor",
    UnknownExtractorError,
    _named_spec(_extractor_spec),
    label=lambda name, spec: spec.usage,
)
CARDS = Kind("zoo_models", "model id", read=_cards)

KINDS = (ARCHITECTURES, TRAINERS, EVALUATORS, DATASETS, CONVERTERS, EXTRACTORS, CARDS)


# ----------------------------------------------------------------------------- merging
@dataclass(frozen=True)
class Claim:
    """A source's claim to some names: a plugin's entry, or a card and its aliases.

    ``names[0]`` is the claim's own name: a claim that loses it loses every name (a card
    whose id two sources claim does not keep its aliases either)."""

    names: tuple[str, ...]
    value: Any
    source: str  # the distribution (or registry file) that claims them
    plugin: str | None = None  # the plugin's name on the manager, for a plugin's claim


@dataclass
class Merged:
    """Claims merged by the duplicate rule: each name to the claim that holds it, and the
    names two sources claim to the error that names both."""

    owners: dict[str, Claim] = field(default_factory=dict)
    errors: dict[str, DuplicateRegistrationError] = field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        return {name: claim.value for name, claim in self.owners.items()}


def merge(claims: Iterable[Claim], noun: str) -> Merged:
    """Merge ``claims`` in order: a name two sources claim becomes an error naming both
    sources (a third claim of it changes nothing), and only that name fails."""
    merged = Merged()
    owners, errors = merged.owners, merged.errors
    for claim in claims:
        for name in claim.names:
            owner = owners.get(name)
            if owner is None or name in errors:
                continue
            errors[name] = DuplicateRegistrationError(noun, name, owner.source, claim.source)
            del owners[name]
            if name == owner.names[0]:  # the owner loses its own name: it loses them all
                for other in owner.names[1:]:
                    if owners.get(other) is owner:
                        del owners[other]
                        errors.setdefault(other, errors[name])
        if claim.names[0] in errors:
            for other in claim.names[1:]:
                errors.setdefault(other, errors[claim.names[0]])
            continue
        for name in claim.names:
            if name not in errors:
                owners[name] = claim
    return merged


# ----------------------------------------------------------------------------- the catalog
@dataclass(frozen=True)
class Contribution:
    """What one working plugin contributes to one kind: name -> value, checked."""

    plugin: str
    distribution: str
    entries: dict[str, Any]


class Catalog:
    """What the plugins of one plugin manager register, by kind, cached until that set of
    plugins changes. Use :func:`get_catalog`, which follows ``reset_plugins``."""

    def __init__(self, pm: ZooPluginManager):
        self.pm = pm
        self._generation = pm.generation
        self._cache: dict[Hashable, Any] = {}
        self._reading: set[str] = set()  # kinds whose hook is being called now

    def cached(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()``'s result, kept until the set of plugins changes (the one cache of
        everything derived from what plugins register: the registry keys its merge of
        registry files and plugin cards here)."""
        self._sync()
        if key not in self._cache:
            value = build()
            self._sync()  # building may have quarantined a plugin: drop what that changed
            self._cache[key] = value
        return self._cache[key]

    def _sync(self) -> None:
        if self.pm.generation != self._generation:
            self._cache.clear()
            self._generation = self.pm.generation

    # ------------------------------------------------------------------ reading
    def contributions(self, kind: Kind) -> list[Contribution]:
        """Each working plugin's checked contribution to ``kind``, in registration order."""
        return self.cached(("contributions", kind.hook), lambda: self._read(kind))

    def _read(self, kind: Kind) -> list[Contribution]:
        if kind.hook in self._reading:  # a hook asked for its own kind: it would never end
            raise ZooError(
                f"a {kind.hook} hook looked up the {kind.noun}s it is registering; a hook "
                "must return what it adds without asking the zoo for the same kind"
            )
        self._reading.add(kind.hook)
        try:
            return self._read_all(kind)
        finally:
            self._reading.discard(kind.hook)

    def _read_all(self, kind: Kind) -> list[Contribution]:
        while True:
            found, faults = [], {}
            for plugin, result in call_hook(kind.hook):
                info = self.pm.infos.get(plugin)
                distribution = info.distribution if info is not None else plugin
                try:
                    entries = self._entries(kind, result, f"plugin {distribution}")
                except PluginFault as fault:
                    faults[plugin] = str(fault)
                    continue
                found.append(Contribution(plugin, distribution, entries))
                if kind is CARDS and info is not None:
                    info.models = list(entries)
            for plugin, why in faults.items():
                self.pm.quarantine(plugin, why)
            if not faults:  # else read again without the plugins just quarantined
                return found

    @staticmethod
    def _entries(kind: Kind, result: Any, source: str) -> dict[str, Any]:
        if kind.read is not None:
            return kind.read(result, source)
        if not isinstance(result, dict):
            raise PluginFault(f"hook {kind.hook} returned {_what(result)}, not dict")
        for name, value in result.items():
            try:
                kind.check(name, value)
            except PluginFault as fault:
                raise PluginFault(f"hook {kind.hook} {fault}") from None
        return dict(result)

    def merged(self, kind: Kind) -> Merged:
        """The contributions to ``kind`` merged by the duplicate rule."""

        def build() -> Merged:
            claims = (
                Claim((name,), value, c.distribution, c.plugin)
                for c in self.contributions(kind)
                for name, value in c.entries.items()
            )
            return merge(claims, kind.noun)

        return self.cached(("merged", kind.hook), build)

    def values(self, kind: Kind) -> dict[str, Any]:
        """Name -> value of every name of ``kind`` that exactly one plugin registers."""
        return self.merged(kind).values()

    def claim(self, kind: Kind, name: str, *, distribution: str | None = None) -> Claim:
        """The claim of ``name``: its value and the plugin that registers it.

        Args:
            distribution: the distribution that should provide ``name`` (a card's
                ``plugin``), named in the error when it does not.

        Raises:
            DuplicateRegistrationError: two plugins register ``name``.
            PluginError: ``distribution`` was found but failed (with the cause).
            PluginMissingError: ``distribution`` is not installed or not enabled.
            UnknownNameError: (the kind's subclass) no plugin registers ``name``.
        """
        merged = self.merged(kind)
        if name in merged.errors:
            raise merged.errors[name]
        if name in merged.owners:
            return merged.owners[name]
        if distribution is not None:
            info = self.pm.distribution_status(distribution)
            if info is not None and info.status == "failed":
                raise PluginError(info.name, info.error or "unknown error", info.distribution)
            raise PluginMissingError(f"{kind.noun} {name!r}", distribution)
        raise self.unknown(kind, name)

    def get(self, kind: Kind, name: str, *, distribution: str | None = None) -> Any:
        """The value registered as ``name`` (see :meth:`claim` for the errors)."""
        return self.claim(kind, name, distribution=distribution).value

    def unknown(self, kind: Kind, name: str) -> UnknownNameError:
        """The error for ``name``, which no plugin of ``kind`` registers."""
        owners = self.merged(kind).owners
        close = difflib.get_close_matches(name, list(owners), n=3)
        known = sorted(kind.label(n, c.value) for n, c in owners.items())
        failed = [i.name for i in self.pm.infos.values() if i.status == "failed"]
        error = kind.unknown or UnknownNameError
        return error(kind.noun, name, close, known, failed)

    def probe(self) -> None:
        """Read every kind (every hook is one), so that a plugin that fails only when a hook
        is called, or returns a value of the wrong kind, is quarantined now (``zoo doctor``)."""
        for kind in KINDS:
            self.contributions(kind)


def get_catalog() -> Catalog:
    """The catalog of the current plugin manager (a new one after ``reset_plugins``)."""
    global _catalog
    pm = get_plugin_manager()
    if _catalog is None or _catalog.pm is not pm:
        _catalog = Catalog(pm)
    return _catalog


_catalog: Catalog | None = None


# ----------------------------------------------------------------------------- shortcuts
def architectures() -> dict[str, type]:
    """Architecture name -> ``Generator`` class, from every working plugin."""
    return get_catalog().values(ARCHITECTURES)


def architecture_class(name: str, *, distribution: str | None = None) -> type:
    """The ``Generator`` class registered as ``name`` (see :meth:`Catalog.claim`)."""
    return get_catalog().get(ARCHITECTURES, name, distribution=distribution)


def trainer_class(architecture: str) -> type:
    """The ``Trainer`` class registered for ``architecture``."""
    return get_catalog().get(TRAINERS, architecture)

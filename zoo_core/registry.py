"""The registry: ``registry.yaml`` plus the cards that plugins add through ``zoo_models``.

Listing and reading cards never imports torch. Results are cached until the set of plugins
changes (or the extra registry files named in ``ZOO_REGISTRY`` change).
"""

from __future__ import annotations

import difflib
import fnmatch
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from zoo_core.card import ModelCard, validation_message
from zoo_core.errors import (
    DuplicateRegistrationError,
    PluginError,
    RegistryError,
    UnknownModelError,
    ZooError,
)
from zoo_core.plugin_manager import call_hook, get_plugin_manager
from zoo_core.settings import get_settings


class ZooDeprecationWarning(FutureWarning):
    """A deprecated model id was used (shown to users by default)."""


@dataclass
class Registry:
    """Cards by id, where each came from, and the ids that are in error."""

    cards: dict[str, ModelCard] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    errors: dict[str, ZooError] = field(default_factory=dict)

    def add(self, card: ModelCard, source: str) -> None:
        """Add ``card``. A name (id or alias) that two cards claim becomes an error naming
        both sources; each card keeps its other names."""
        for name in (card.id, *card.aliases):
            owner = self._owner(name)
            if name not in self.errors and owner is not None:
                self.errors[name] = DuplicateRegistrationError(
                    "model id", name, self.sources[owner], source
                )
                self._release(owner, name)
        if card.id in self.errors:  # its aliases would redirect to an ambiguous id
            for alias in card.aliases:
                self.errors.setdefault(alias, self.errors[card.id])
            return
        self.cards[card.id] = card
        self.sources[card.id] = source
        for alias in card.aliases:
            if alias not in self.errors:
                self.aliases[alias] = card.id

    def _owner(self, name: str) -> str | None:
        """The id of the card that claims ``name`` as its id or an alias."""
        return name if name in self.cards else self.aliases.get(name)

    def _release(self, owner: str, name: str) -> None:
        """Take ``name`` from card ``owner``; the card goes if it is its id."""
        if name != owner:
            del self.aliases[name]
            return
        card = self.cards.pop(owner)
        del self.sources[owner]
        for alias in card.aliases:
            if self.aliases.get(alias) == owner:
                del self.aliases[alias]
                self.errors.setdefault(alias, self.errors[owner])

    def resolve(self, model_id: str) -> str:
        """The canonical id for ``model_id`` (warning if it is a deprecated alias)."""
        if model_id in self.errors:
            raise self.errors[model_id]
        if model_id in self.cards:
            return model_id
        if model_id in self.aliases:
            new = self.aliases[model_id]
            warnings.warn(
                f"model id {model_id!r} is deprecated; use {new!r}",
                ZooDeprecationWarning,
                stacklevel=3,
            )
            return new
        names = list(self.cards) + list(self.aliases)
        raise UnknownModelError(model_id, difflib.get_close_matches(model_id, names, n=3))


def builtin_registry_path() -> Path:
    """The ``registry.yaml`` shipped inside the zoo-core wheel."""
    return Path(str(resources.files("zoo_core").joinpath("registry.yaml")))


def read_registry_file(path: Path) -> list[ModelCard]:
    """Parse and validate one registry file (a mapping ``model id -> card``).

    Raises:
        RegistryError: the file is missing, empty, not YAML, not a mapping, or a card does not
            validate; the message names the file, the model id, the field and what was expected.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the registry file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise RegistryError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            f"save the file as UTF-8"
        ) from None
    try:
        data = yaml.load(text, Loader=_RegistryLoader)  # a SafeLoader
    except RecursionError:
        raise RegistryError(f"{path}: nested too deeply to be a registry file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or "").split())
        raise RegistryError(
            f"{path}: not valid YAML{where}" + (f": {problem}" if problem else "") + "; fix it"
        ) from None
    if data is None:
        raise RegistryError(f"{path}: the registry file is empty; expected a mapping id -> card")
    if not isinstance(data, dict):
        raise RegistryError(
            f"{path}: expected a mapping model id -> card, got {type(data).__name__}"
        )
    cards = []
    for model_id, body in data.items():
        if not isinstance(body, dict):
            raise RegistryError(
                f"{path}: model {model_id!r}: expected a mapping of card fields, "
                f"got {type(body).__name__}"
            )
        if "id" in body:
            raise RegistryError(
                f"{path}: model {model_id!r}: field 'id' is given by the mapping key; remove it"
            )
        cards.append(parse_card({"id": model_id, **body}, str(path), str(model_id)))
    return cards


class _RegistryLoader(yaml.SafeLoader):
    """Safe YAML where a key given twice in one mapping is an error (plain YAML keeps the
    last one, silently dropping the first card)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_card(data: Any, source: str, model_id: str | None = None) -> ModelCard:
    """Validate one card, raising :class:`RegistryError` with a one-line message."""
    if isinstance(data, ModelCard):
        return data
    if not isinstance(data, dict):
        raise RegistryError(f"{source}: expected a card mapping, got {type(data).__name__}")
    model_id = model_id if model_id is not None else data.get("id")
    try:
        return ModelCard.model_validate(data)
    except ValidationError as exc:
        raise RegistryError(
            validation_message(source, str(model_id) if model_id else None, exc)
        ) from None


_cache: tuple[Any, Registry] | None = None


def get_registry() -> Registry:
    """The merged registry (cached until the plugins or ``ZOO_REGISTRY`` change)."""
    global _cache
    pm = get_plugin_manager()
    extra = tuple(get_settings().registry)
    # The manager itself, not id(pm): a rebuilt manager may reuse a freed one's address.
    key = (pm, pm.generation, _stamps(extra))
    if _cache is not None and _cache[0] == key:
        return _cache[1]
    registry = Registry()
    for card in read_registry_file(builtin_registry_path()):
        registry.add(card, "registry.yaml")
    for path in extra:
        for card in read_registry_file(Path(path)):
            registry.add(card, str(path))
    for plugin, cards in call_hook("zoo_models"):
        info = pm.infos.get(plugin)
        source = f"plugin {info.distribution if info else plugin}"
        try:
            parsed = [parse_card(card, source) for card in _as_list(cards, source)]
        except RegistryError as exc:
            pm.quarantine(plugin, str(exc))
            continue
        for card in parsed:
            registry.add(card, source)
        if info is not None:
            info.models = [card.id for card in parsed]
    # Quarantining a plugin changed the generation: key on the state after the build.
    _cache = ((pm, pm.generation, key[2]), registry)
    return registry


def _stamps(paths: tuple[Path, ...]) -> tuple[tuple[str, int, int], ...]:
    """Path, mtime and size of each extra registry file, so that an edit is seen."""
    stamps = []
    for path in paths:
        try:
            stat = Path(path).stat()
        except OSError:
            stamps.append((str(path), -1, -1))
        else:
            stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


def _as_list(cards: Any, source: str) -> list[Any]:
    if not isinstance(cards, list | tuple):
        raise RegistryError(f"{source}: zoo_models returned {type(cards).__name__}, not a list")
    return list(cards)


def list_models(
    pattern: str | None = None,
    *,
    family: str | None = None,
    dataset: str | None = None,
    modality: str | None = None,
) -> list[str]:
    """Sorted model ids, filtered by an fnmatch ``pattern`` and by card fields."""
    registry = get_registry()
    return sorted(
        model_id
        for model_id, card in registry.cards.items()
        if (pattern is None or fnmatch.fnmatchcase(model_id, pattern))
        and (family is None or card.family == family)
        and (dataset is None or card.dataset == dataset)
        and (modality is None or card.modality == modality)
    )


def model_card(model_id: str) -> ModelCard:
    """The card of ``model_id`` (deprecated aliases warn and redirect).

    Raises:
        UnknownModelError: no source defines the id (the message lists the closest ids).
        DuplicateRegistrationError: two sources define it.
    """
    registry = get_registry()
    try:
        return registry.cards[registry.resolve(model_id)]
    except UnknownModelError as exc:
        failed = [i for i in get_plugin_manager().infos.values() if i.status == "failed"]
        for info in failed:  # its cards went with it when it was quarantined
            if model_id in info.models:
                raise PluginError(info.name, info.error or "?", info.distribution) from None
        if not failed:
            raise
        raise UnknownModelError(model_id, exc.close, [i.name for i in failed]) from None

"""The registry: ``registry.yaml``, the ``ZOO_REGISTRY`` files and the cards that plugins
add through ``zoo_models``, merged by the catalog's duplicate rule.

Listing and reading cards never imports torch. The merge is kept in the catalog's cache, so
it is redone when the set of plugins changes, and when a ``ZOO_REGISTRY`` file does (by
modification time and size).
"""

from __future__ import annotations

import difflib
import fnmatch
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from zoo_core.card import ModelCard, parse_card
from zoo_core.catalog import CARDS, Claim, get_catalog, merge
from zoo_core.errors import (
    DuplicateRegistrationError,
    PluginError,
    RegistryError,
    UnknownModelError,
)
from zoo_core.settings import get_settings


class ZooDeprecationWarning(FutureWarning):
    """A deprecated model id was used (shown to users by default)."""


@dataclass
class Registry:
    """Cards by id, where each came from, the deprecated aliases and the ids in error."""

    cards: dict[str, ModelCard] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    errors: dict[str, DuplicateRegistrationError] = field(default_factory=dict)

    @classmethod
    def of(cls, claims: list[Claim]) -> Registry:
        """The registry of ``claims`` (a card claims its id and its aliases), merged in
        order: a name two sources claim is an error naming both, and a card whose own id is
        claimed twice is not used (its aliases raise the same error)."""
        merged = merge(claims, CARDS.noun)
        registry = cls(errors=merged.errors)
        for name, claim in merged.owners.items():
            card = claim.value
            if name == card.id:
                registry.cards[name] = card
                registry.sources[name] = claim.source
            else:
                registry.aliases[name] = card.id
        return registry

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


def get_registry() -> Registry:
    """The merged registry (cached until the plugins or the ``ZOO_REGISTRY`` files change).

    Raises:
        RegistryError: ``registry.yaml`` or a ``ZOO_REGISTRY`` file does not validate.
    """
    catalog = get_catalog()
    extra = tuple(get_settings().registry)

    def build() -> Registry:
        claims = [
            Claim((card.id, *card.aliases), card, source)
            for path, source in [(builtin_registry_path(), "registry.yaml")]
            + [(Path(p), str(p)) for p in extra]
            for card in read_registry_file(path)
        ]
        for contribution in catalog.contributions(CARDS):
            source = f"plugin {contribution.distribution}"
            claims += [
                Claim((card.id, *card.aliases), card, source, contribution.plugin)
                for card in contribution.entries.values()
            ]
        return Registry.of(claims)

    return catalog.cached(("registry", _stamps(extra)), build)


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
        failed = [i for i in get_catalog().pm.infos.values() if i.status == "failed"]
        for info in failed:  # its cards went with it when it was quarantined
            if model_id in info.models:
                raise PluginError(info.name, info.error or "?", info.distribution) from None
        if not failed:
            raise
        raise UnknownModelError(model_id, exc.close, [i.name for i in failed]) from None

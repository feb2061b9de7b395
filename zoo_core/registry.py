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
        for name in (card.id, *card.aliases):
            if name in self.errors:
                return
            other = self.sources.get(name) or self.sources.get(self.aliases.get(name, ""))
            if other is not None:
                self.errors[name] = DuplicateRegistrationError("model id", name, other, source)
                self._drop(name)
                return
        self.cards[card.id] = card
        self.sources[card.id] = source
        for alias in card.aliases:
            self.aliases[alias] = card.id

    def _drop(self, name: str) -> None:
        target = self.aliases.pop(name, name)
        card = self.cards.pop(target, None)
        self.sources.pop(target, None)
        if card is not None:
            for alias in card.aliases:
                self.aliases.pop(alias, None)

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
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise RegistryError(f"{path}: not valid YAML{where}; fix the syntax") from exc
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
    key = (id(pm), pm.generation, extra)
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
    # Quarantining a plugin changed the generation: key on the state after the build.
    _cache = ((id(pm), pm.generation, extra), registry)
    return registry


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
    return registry.cards[registry.resolve(model_id)]

"""Trainers by architecture name, from the plugins' ``zoo_trainers`` hook."""

from __future__ import annotations

from zoo_core.errors import ConfigError
from zoo_core.plugin_manager import collect_mapping
from zoo_core.trainer import Trainer


def trainer_class(architecture: str) -> type[Trainer]:
    """The Trainer registered for ``architecture`` (errors name the known ones)."""
    entries, errors = collect_mapping("zoo_trainers")
    if architecture in errors:
        raise errors[architecture]
    if architecture not in entries:
        raise ConfigError(
            f"no installed plugin trains the architecture {architecture!r}; trainable: "
            f"{', '.join(sorted(entries)) or 'none'}"
        )
    return entries[architecture].value

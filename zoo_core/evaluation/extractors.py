"""Feature extractors by id, from every plugin's ``zoo_extractors`` (the core's own:
``inception-fid``, ``fashion-net`` and ``timm:<model name>``)."""

from __future__ import annotations

import torch

from zoo_core.catalog import EXTRACTORS, get_catalog
from zoo_core.extractor import FeatureExtractor


def get_extractor(
    extractor_id: str, *, device: torch.device | str | None = None
) -> FeatureExtractor:
    """The extractor ``extractor_id`` (``NAME`` or ``NAME:ARGUMENT``), its weights verified
    and loaded, frozen, in eval mode.

    Raises:
        UnknownExtractorError: an id that names no registered extractor (with the closest).
        ConfigError: an argument the extractor does not take, or a missing one it needs.
        ExtractorUnavailableError: its weights are not here and may not be fetched.
        ChecksumMismatchError: its weights file is not the one the zoo pins.
    """
    name, _, argument = extractor_id.partition(":")
    spec = get_catalog().get(EXTRACTORS, name)
    extractor = spec.build(argument or None)
    if device is not None:
        extractor.to(device)
    return extractor


def list_extractors() -> list[str]:
    """How the ids of every registered extractor are written (``timm:<model name>``)."""
    return sorted(spec.usage for spec in get_catalog().values(EXTRACTORS).values())

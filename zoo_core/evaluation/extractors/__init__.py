"""Feature extractors by id: ``inception-fid``, ``fashion-net`` and ``timm:<model name>``."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from zoo_core.errors import UnknownExtractorError

if TYPE_CHECKING:
    import torch

    from zoo_core.evaluation.extractors.base import FeatureExtractor

EXTRACTORS = ("inception-fid", "fashion-net", "timm:<model name>")


def get_extractor(
    extractor_id: str, *, device: torch.device | str | None = None
) -> FeatureExtractor:
    """The extractor ``extractor_id``, its weights verified and loaded, in eval mode.

    Raises:
        UnknownExtractorError: an id that names no extractor.
        ExtractorUnavailableError: its weights are not here and may not be fetched.
        ChecksumMismatchError: its weights file is not the one the zoo pins.
    """
    if extractor_id == "inception-fid":
        from zoo_core.evaluation.extractors.inception import load_inception_fid

        extractor = load_inception_fid()
    elif extractor_id == "fashion-net":
        from zoo_core.evaluation.extractors.fashion_net import load_fashion_net

        extractor = load_fashion_net()
    elif extractor_id.startswith("timm:") and len(extractor_id) > len("timm:"):
        from zoo_core.evaluation.extractors.timm_extractor import load_timm_extractor

        extractor = load_timm_extractor(extractor_id.removeprefix("timm:"))
    else:
        close = difflib.get_close_matches(extractor_id, EXTRACTORS[:2], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownExtractorError(
            f"unknown feature extractor {extractor_id!r}; {hint}known: {', '.join(EXTRACTORS)}"
        )
    extractor.requires_grad_(False).eval()
    if device is not None:
        extractor.to(device)
    return extractor

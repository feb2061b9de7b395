"""What a feature extractor is: a frozen network from images to a feature space, named and
pinned by the sha256 of its weights, so that a protocol can say exactly which one it used."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import nn


class FeatureExtractor(nn.Module, ABC):
    """A frozen image network whose activations are the feature space of FID-like metrics.

    Class attributes:
        input_size: the ``(H, W)`` the network takes; the protocol's preprocessing resizes
            to it (``None``: any size).
        input_channels: 1 or 3; grayscale images are repeated to 3 channels where needed.

    Attributes:
        id: the extractor's name as protocols spell it (``inception-fid``, ``fashion-net``,
            ``timm:<model name>``).
        weights_sha256: sha256 (hex) of the weights file the network was loaded from.
        feature_dim: size of ``features``.
        num_classes: size of ``logits`` (the classifier head, for the Inception Score), or
            ``None`` when the network has no head.
    """

    input_size: ClassVar[tuple[int, int] | None] = None
    input_channels: ClassVar[int] = 3

    id: str
    weights_sha256: str
    feature_dim: int
    num_classes: int | None = None

    @abstractmethod
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of a batch.

        Args:
            images: ``(N, input_channels, *input_size)`` float32 in ``[0, 1]`` (already
                resized by the protocol's preprocessing); the network applies its own
                normalisation.

        Returns:
            ``{"features": (N, feature_dim) float32}``, plus ``"logits"``
            ``(N, num_classes)`` where the network has a classifier head.
        """


RESIZE_METHODS = ("bilinear", "bicubic", "nearest", "none")


def preprocess(images: torch.Tensor, extractor: FeatureExtractor, resize: str) -> torch.Tensor:
    """Images in the canonical form ``(N, C, H, W)`` in [0, 1] -> the extractor's input.

    Grayscale is repeated to three channels (and RGB averaged to one) as the extractor
    needs; then the images are resized to its ``input_size``: ``bilinear`` is
    ``F.interpolate(mode="bilinear", align_corners=False)`` without antialiasing, as
    pytorch-fid resizes for the FID Inception; ``bicubic`` antialiases (as PIL does);
    ``none`` requires the size to match already.

    Raises:
        ConfigError: an unknown resize method, images that are not ``(N, 1|3, H, W)``, or a
            size mismatch under ``none``.
    """
    from zoo_core.errors import ConfigError

    if resize not in RESIZE_METHODS:
        raise ConfigError(f"unknown resize {resize!r}; use one of {', '.join(RESIZE_METHODS)}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ConfigError(
            f"feature extraction takes images (N, 1 or 3, H, W), got {tuple(images.shape)}"
        )
    x = images.to(torch.float32).clamp(0.0, 1.0)
    if x.shape[1] != extractor.input_channels:
        x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x.mean(dim=1, keepdim=True)
    size = extractor.input_size
    if size is None or tuple(x.shape[-2:]) == tuple(size):
        return x
    if resize == "none":
        raise ConfigError(
            f"{extractor.id} takes {size[0]}x{size[1]} images, got {x.shape[-2]}x{x.shape[-1]} "
            "and the protocol's resize is 'none'"
        )
    if resize == "bilinear":
        return torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
    if resize == "bicubic":
        x = torch.nn.functional.interpolate(
            x, size=size, mode="bicubic", align_corners=False, antialias=True
        )
        return x.clamp(0.0, 1.0)
    return torch.nn.functional.interpolate(x, size=size, mode="nearest")

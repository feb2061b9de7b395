"""What a feature extractor is: a frozen network from images to a feature space, named and
pinned by the sha256 of its weights, so that a protocol can say exactly which one it used;
and how a plugin registers one (:class:`ExtractorSpec`, through ``zoo_extractors``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from zoo_core.card import MODEL_ID_PATTERN
from zoo_core.errors import ConfigError


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


class ExtractorSpec(BaseModel):
    """How to load one feature extractor: what the ``zoo_extractors`` hook returns.

    An extractor id is the spec's ``name`` (``fashion-net``), or, for a spec that takes an
    ``argument``, ``name:ARGUMENT`` (``timm:vit_large_patch14_dinov2.lvd142m@224``).
    ``load(argument)`` (``load()`` without one) returns the extractor with its weights
    verified and its ``id`` and ``weights_sha256`` set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=MODEL_ID_PATTERN, max_length=64, description="The extractor's name.")
    description: str = Field(description="One line: the network, its features, its weights.")
    argument: str | None = Field(
        None, description="What follows the colon of its ids (e.g. 'model name'); None: none."
    )
    load: Callable[..., FeatureExtractor] = Field(
        exclude=True, repr=False, description="load(argument) (or load()) -> the extractor."
    )

    @property
    def usage(self) -> str:
        """How an id of this extractor is written (``timm:<model name>``)."""
        return self.name if self.argument is None else f"{self.name}:<{self.argument}>"

    def build(self, argument: str | None) -> FeatureExtractor:
        """The extractor of id ``name[:argument]``, frozen and in eval mode.

        Raises:
            ConfigError: an argument the spec does not take, or a missing one it needs.
        """
        if (argument is None) != (self.argument is None):
            given = "none" if argument is None else repr(argument)
            raise ConfigError(
                f"feature extractor {self.name!r} is written {self.usage}; got argument {given}"
            )
        extractor = self.load() if argument is None else self.load(argument)
        return extractor.requires_grad_(False).eval()


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

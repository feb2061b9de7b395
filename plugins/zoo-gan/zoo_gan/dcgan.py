"""DCGAN: Radford, Metz & Chintala 2015, "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", arXiv 1511.06434.

Generator: ``z`` projected and reshaped to a ``s0 x s0`` feature map (``s0`` in 4..7), then
fractionally-strided 4x4 convolutions that double the side and halve the channels, batch
normalization and ReLU everywhere but the tanh output. Discriminator: the mirror image with
strided 4x4 convolutions and LeakyReLU(0.2), batch normalization in every layer but the
first, and a linear read-out. Weights from N(0, 0.02^2), batch-norm scales from N(1, 0.02^2),
as the paper says (section 4).

What differs from the paper: the generator's first layer is a linear projection of ``z``
followed by a reshape (the paper's "project and reshape"), sized for any ``image_size`` of
the form ``s0 * 2^k`` (28 = 7 * 4 for Fashion-MNIST, 32, 64); the discriminator's
normalization is an option (``batch``, ``layer`` for WGAN-GP, or ``none``) and spectral
normalization (Miyato et al. 2018, arXiv 1802.05957) can be added.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from zoo_core.generator import Example
from zoo_core.seeding import Noise
from zoo_gan.base import GAN, ImageSize, start_size


class DCGANConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: ImageSize = Field(
        28, description="Side of the square images: s0 * 2^k, s0 in 4..7."
    )
    channels: int = Field(1, ge=1, description="Image channels.")
    z_dim: int = Field(100, ge=1, description="Latent dimension (standard normal).")
    width: int = Field(64, ge=1, description="Channels of the last hidden feature map.")
    init_std: float = Field(0.02, gt=0, description="Standard deviation of initial weights.")


class DCGANDiscriminatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(64, ge=1, description="Channels of the first feature map.")
    norm: Literal["batch", "layer", "none"] = Field(
        "batch", description="Normalization after every convolution but the first."
    )
    spectral_norm: bool = Field(False, description="Spectral normalization of every layer.")
    init_std: float = Field(0.02, gt=0, description="Standard deviation of initial weights.")

    @property
    def uses_batch_norm(self) -> bool:
        return self.norm == "batch"


def init_weights(module: nn.Module, std: float) -> None:
    """DCGAN's initialization: N(0, std^2) weights, N(1, std^2) norm scales, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, 0.0, std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d | nn.GroupNorm) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # layer norm over (C, H, W)
    return nn.Identity()


def apply_spectral_norm(module: nn.Module) -> None:
    for m in list(module.modules()):
        if isinstance(m, nn.Conv2d | nn.Linear | nn.Embedding):
            nn.utils.parametrizations.spectral_norm(m)


class DCGAN(GAN):
    """The DCGAN generator: ``sample`` gives images ``(n, channels, image_size, image_size)``
    in [0, 1]."""

    architecture: ClassVar[str] = "dcgan"
    example: ClassVar[Example] = Example(
        config={"image_size": 28, "z_dim": 16, "width": 8}, dataset="fashion-mnist"
    )
    Config: ClassVar[type[BaseModel]] = DCGANConfig
    modality: ClassVar[str] = "image"

    def __init__(self, config: DCGANConfig):
        super().__init__(config)
        s0, k = start_size(config.image_size)
        top = config.width * 2 ** (k - 1)
        self.s0, self.top = s0, top
        self.project = nn.Linear(config.z_dim, top * s0 * s0, bias=False)
        self.project_norm = nn.BatchNorm2d(top)
        blocks: list[nn.Module] = []
        channels = top
        for _ in range(k - 1):
            blocks += [
                nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(channels // 2),
                nn.ReLU(),
            ]
            channels //= 2
        blocks += [nn.ConvTranspose2d(channels, config.channels, 4, 2, 1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)
        init_weights(self, config.init_std)

    def synthesize(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        truncation: float = 1.0,
        noise: Noise | None = None,
    ) -> torch.Tensor:
        h = self.project(z * truncation).view(-1, self.top, self.s0, self.s0)  # (B, C0, s0, s0)
        return self.blocks(torch.relu(self.project_norm(h)))  # (B, C, H, W) in [-1, 1]


class DCGANDiscriminator(nn.Module):
    """Images ``(B, C, H, W)`` in [-1, 1] to logits ``(B,)``."""

    def __init__(self, config: DCGANDiscriminatorConfig, generator: DCGANConfig):
        super().__init__()
        s0, k = start_size(generator.image_size)
        layers: list[nn.Module] = [
            nn.Conv2d(generator.channels, config.width, 4, 2, 1),
            nn.LeakyReLU(0.2),
        ]
        channels = config.width
        for _ in range(k - 1):
            layers += [
                nn.Conv2d(channels, channels * 2, 4, 2, 1, bias=config.norm == "none"),
                _norm(config.norm, channels * 2),
                nn.LeakyReLU(0.2),
            ]
            channels *= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels * s0 * s0, 1)
        init_weights(self, config.init_std)
        if config.spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(-1)

"""A class-conditional GAN with a projection discriminator: Miyato & Koyama 2018, "cGANs with
Projection Discriminator", arXiv 1802.05637, and conditional batch normalization in the
generator (de Vries et al. 2017, arXiv 1707.00683; Dumoulin et al. 2017, arXiv 1610.07629).

Generator: DCGAN's layout (project and reshape, fractionally-strided convolutions), each
batch normalization made class-conditional: normalized without its own affine, then scaled
and shifted by per-class embeddings (initialized to 1 and 0). Discriminator: strided
convolutions with spectral normalization (Miyato et al. 2018, arXiv 1802.05957) and
LeakyReLU, its last feature map flattened to ``phi(x)``, and the projection logit
``psi(phi(x)) + <embed(y), phi(x)>`` (the paper's eq. 3).

What differs from the paper: DCGAN-sized convolutional networks instead of the paper's
ResNets, so that the model trains on two CPU cores; and ``phi`` flattens the last feature
map where the paper's deep ResNet sums it over positions: after two convolutions a sum
would keep only local texture statistics (a receptive field of 10 pixels) and the
discriminator could not judge a garment's shape.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from zoo_core.generator import Example
from zoo_core.seeding import Noise
from zoo_gan.base import GAN, ImageSize, start_size
from zoo_gan.dcgan import DCGANDiscriminatorConfig, apply_spectral_norm, init_weights


class CGANConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: ImageSize = Field(
        28, description="Side of the square images: s0 * 2^k, s0 in 4..7."
    )
    channels: int = Field(1, ge=1, description="Image channels.")
    num_classes: int = Field(ge=2, description="Classes the generator is conditioned on.")
    z_dim: int = Field(100, ge=1, description="Latent dimension (standard normal).")
    width: int = Field(64, ge=1, description="Channels of the last hidden feature map.")
    init_std: float = Field(0.02, gt=0, description="Standard deviation of initial weights.")


class CGANDiscriminatorConfig(DCGANDiscriminatorConfig):
    """DCGAN's discriminator options, with the projection paper's defaults: spectral
    normalization and no other normalization."""

    norm: Literal["batch", "layer", "none"] = Field(
        "none", description="Normalization after every convolution but the first."
    )
    spectral_norm: bool = Field(True, description="Spectral normalization of every layer.")


class ConditionalBatchNorm2d(nn.Module):
    """Batch normalization whose scale and shift are looked up per class."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.scale = nn.Embedding(num_classes, channels)
        self.shift = nn.Embedding(num_classes, channels)

    def reset(self) -> None:
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)  # (B, C, H, W)
        return h * self.scale(labels)[:, :, None, None] + self.shift(labels)[:, :, None, None]


class CGAN(GAN):
    """The conditional generator: ``sample(n, labels=...)`` gives images
    ``(n, channels, image_size, image_size)`` in [0, 1] of the given classes."""

    architecture: ClassVar[str] = "cgan"
    example: ClassVar[Example] = Example(
        config={"image_size": 28, "z_dim": 16, "width": 8, "num_classes": 10},
        dataset="fashion-mnist",
    )
    Config: ClassVar[type[BaseModel]] = CGANConfig
    modality: ClassVar[str] = "image"
    capabilities: ClassVar[frozenset[str]] = frozenset({"sample", "conditional", "interpolate"})

    def __init__(self, config: CGANConfig):
        super().__init__(config)
        s0, k = start_size(config.image_size)
        top = config.width * 2 ** (k - 1)
        self.s0, self.top = s0, top
        self.project = nn.Linear(config.z_dim, top * s0 * s0, bias=False)
        self.norms = nn.ModuleList([ConditionalBatchNorm2d(top, config.num_classes)])
        self.convs = nn.ModuleList()
        channels = top
        for _ in range(k - 1):
            self.convs.append(nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False))
            self.norms.append(ConditionalBatchNorm2d(channels // 2, config.num_classes))
            channels //= 2
        self.out = nn.ConvTranspose2d(channels, config.channels, 4, 2, 1)
        init_weights(self, config.init_std)
        for norm in self.norms:
            norm.reset()

    def synthesize(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        truncation: float = 1.0,
        noise: Noise | None = None,
    ) -> torch.Tensor:
        if labels is None:
            raise ValueError("cgan needs labels")  # sample() checks first; training passes them
        h = self.project(z * truncation).view(-1, self.top, self.s0, self.s0)  # (B, C0, s0, s0)
        h = torch.relu(self.norms[0](h, labels))
        for conv, norm in zip(self.convs, self.norms[1:], strict=True):
            h = torch.relu(norm(conv(h), labels))  # side doubled, channels halved
        return torch.tanh(self.out(h))  # (B, C, H, W) in [-1, 1]


class ProjectionDiscriminator(nn.Module):
    """Images ``(B, C, H, W)`` in [-1, 1] and labels ``(B,)`` to logits ``(B,)``."""

    def __init__(self, config: CGANDiscriminatorConfig, generator: CGANConfig):
        super().__init__()
        s0, k = start_size(generator.image_size)
        layers: list[nn.Module] = [
            nn.Conv2d(generator.channels, config.width, 4, 2, 1),
            nn.LeakyReLU(0.2),
        ]
        channels = config.width
        for _ in range(k - 1):
            layers += [nn.Conv2d(channels, channels * 2, 4, 2, 1), nn.LeakyReLU(0.2)]
            if config.norm == "batch":
                layers.insert(-1, nn.BatchNorm2d(channels * 2))
            elif config.norm == "layer":
                layers.insert(-1, nn.GroupNorm(1, channels * 2))
            channels *= 2
        self.features = nn.Sequential(*layers)
        features = channels * s0 * s0
        self.psi = nn.Linear(features, 1)
        self.embed = nn.Embedding(generator.num_classes, features)
        init_weights(self, config.init_std)
        if config.spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        phi = self.features(x).flatten(1)  # (B, F): F = C * s0 * s0
        out = self.psi(phi).squeeze(-1)  # (B,)
        if labels is not None:
            out = out + (self.embed(labels) * phi).sum(-1)  # eq. 3's projection term
        return out

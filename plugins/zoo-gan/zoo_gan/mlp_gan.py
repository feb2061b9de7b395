"""The small MLP GAN of the 2-D mode-collapse experiments, with a packed discriminator:
Lin, Khetan, Fanti & Oh 2018, "PacGAN: The power of two samples in generative adversarial
networks", arXiv 1712.04086 (section 5.1 and its released code).

Generator: ``z`` (2-D standard normal) through four hidden layers of 400 ReLU units with batch
normalization to a 2-D point. Discriminator: three hidden layers of 200 maxout units of 5
pieces (Goodfellow et al. 2013, arXiv 1302.4389), no normalization, one output. Weights are
drawn from N(0, 0.02^2), biases start at 0, as in the paper's code. Packing: the
discriminator scores ``packing`` samples at once, concatenated (its input is
``packing * 2``-dimensional); a batch of ``B`` samples is ``B / packing`` packs of
consecutive samples (the samples are independent, so which ones share a pack is arbitrary).

What differs from the paper's code: batch normalization normalizes over the whole generated
batch (the paper's code over each of the ``packing`` sub-batches it draws separately), and
the running statistics used at sampling time follow PyTorch's update with momentum 0.05
(the code's ``0.95 * old + 0.05 * new``, the same rule).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from zoo_core.errors import ConfigError
from zoo_core.generator import Example
from zoo_core.seeding import Noise
from zoo_gan.base import GAN


class MLPGANConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    z_dim: int = Field(2, ge=1, description="Latent dimension (standard normal).")
    data_dim: int = Field(2, ge=1, description="Dimension of the generated points.")
    hidden: int = Field(400, ge=1, description="Units per hidden layer.")
    layers: int = Field(4, ge=1, description="Hidden layers.")
    batch_norm: bool = Field(True, description="Batch normalization before each ReLU.")
    init_std: float = Field(0.02, gt=0, description="Standard deviation of initial weights.")


class MLPDiscriminatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden: int = Field(200, ge=1, description="Maxout units per hidden layer.")
    pieces: int = Field(5, ge=1, description="Linear pieces per maxout unit.")
    layers: int = Field(3, ge=1, description="Hidden layers.")
    packing: int = Field(1, ge=1, description="Samples the discriminator sees at once (PacGAN m).")
    spectral_norm: bool = Field(False, description="Spectral normalization of every layer.")
    init_std: float = Field(0.02, gt=0, description="Standard deviation of initial weights.")

    @property
    def uses_batch_norm(self) -> bool:
        return False


class Maxout(nn.Module):
    """``out`` maxout units: the maximum over ``pieces`` affine maps of the input."""

    def __init__(self, inp: int, out: int, pieces: int):
        super().__init__()
        self.out, self.pieces = out, pieces
        self.linear = nn.Linear(inp, out * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)  # (B, out * pieces)
        return y.view(*y.shape[:-1], self.out, self.pieces).amax(-1)  # (B, out)


def _init(module: nn.Module, std: float) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class MLPGAN(GAN):
    """The PacGAN 2-D generator: ``sample`` gives points ``(n, data_dim)``."""

    architecture: ClassVar[str] = "mlp-gan"
    example: ClassVar[Example] = Example(config={"hidden": 32, "layers": 2}, dataset="ring8")
    Config: ClassVar[type[BaseModel]] = MLPGANConfig
    modality: ClassVar[str] = "points"
    default_batch_size: ClassVar[int] = 2500

    def __init__(self, config: MLPGANConfig):
        super().__init__(config)
        layers: list[nn.Module] = []
        width = config.z_dim
        for _ in range(config.layers):
            layers.append(nn.Linear(width, config.hidden, bias=not config.batch_norm))
            if config.batch_norm:
                layers.append(nn.BatchNorm1d(config.hidden, momentum=0.05))
            layers.append(nn.ReLU())
            width = config.hidden
        layers.append(nn.Linear(width, config.data_dim))
        self.net = nn.Sequential(*layers)
        _init(self, config.init_std)

    def synthesize(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        truncation: float = 1.0,
        noise: Noise | None = None,
    ) -> torch.Tensor:
        return self.net(z * truncation)  # (B, z_dim) -> (B, data_dim)


class MLPDiscriminator(nn.Module):
    """The PacGAN 2-D discriminator: ``(B, data_dim)`` samples to ``(B / packing,)`` logits."""

    def __init__(self, config: MLPDiscriminatorConfig, generator: MLPGANConfig):
        super().__init__()
        self.packing = config.packing
        layers: list[nn.Module] = []
        width = generator.data_dim * config.packing
        for _ in range(config.layers):
            layers.append(Maxout(width, config.hidden, config.pieces))
            width = config.hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        _init(self, config.init_std)
        if config.spectral_norm:
            for m in self.net.modules():
                if isinstance(m, nn.Linear):
                    nn.utils.parametrizations.spectral_norm(m)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        b = x.shape[0]
        if b % self.packing:
            raise ConfigError(
                f"a batch of {b} samples does not split into packs of {self.packing}; make "
                f"train.batch_size a multiple of the packing"
            )
        packs = x.reshape(b // self.packing, -1)  # (B / m, m * D): consecutive samples
        return self.net(packs).squeeze(-1)

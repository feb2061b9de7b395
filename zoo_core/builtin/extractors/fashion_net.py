"""``fashion-net``: a small Fashion-MNIST classifier whose penultimate layer is the feature
space of the ``fashion-fid-10k`` protocol (FID, KID, precision/recall on Fashion-MNIST).

The Inception network of FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update
Rule Converge to a Local Nash Equilibrium", arXiv 1706.08500) was trained on ImageNet and
sees 28x28 grayscale clothes upsampled to 299x299 RGB; its weights are a download of about
100 MB. This network was trained by the project on Fashion-MNIST itself (Xiao et al. 2017,
"Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms", arXiv
1708.07747) and is bundled with zoo-core (under 2 MB), so evaluation works offline, in a
feature space learnt from the kind of images being evaluated.

Architecture: a VGG-style CNN (Simonyan and Zisserman 2014, "Very Deep Convolutional
Networks for Large-Scale Image Recognition", arXiv 1409.1556), scaled down: two stages of two
3x3 conv-BatchNorm-ReLU layers (BatchNorm: Ioffe and Szegedy 2015, arXiv 1502.03167), each
stage ending in a 2x2 max-pool, then one hidden fully connected layer and the classifier.
The **features** are the ReLU outputs of the hidden layer (``hidden_dim`` = 128 values, all
``>= 0``, like the pooled features of the FID Inception); the **logits** are the classifier's
outputs. Dropout (Srivastava et al. 2014, JMLR 15) sits between the two, so it never touches
the features, and the network is deterministic in eval mode.

Training: the shared loop, from the recipe ``zoo_core/recipes/fashion-net.yaml``, with the
trainer of :mod:`zoo_core.builtin.extractors.fashion_net_trainer` (AdamW under a one-cycle
schedule, random crops and flips); a rerun on the same hardware and thread count reproduces
the weights byte for byte. The card next to the weights records the test accuracy and how
the weights were made.
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from zoo_core.data.images import FASHION_MNIST_CLASSES
from zoo_core.errors import ExtractorUnavailableError
from zoo_core.extractor import FeatureExtractor
from zoo_core.weights.formats import read_tensors
from zoo_core.weights.sources import verify_sha256
from zoo_core.weights.state import load_state

EXTRACTOR_ID = "fashion-net"
WEIGHTS_NAME = "fashion-net.safetensors"
CARD_NAME = "fashion-net.json"


class FashionNetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: tuple[int, int] = Field(
        (32, 64),
        description="Output channels of the two conv stages (each: two 3x3 conv-BN-ReLU "
        "layers, then a 2x2 max-pool).",
    )
    hidden_dim: int = Field(
        128, ge=1, le=4096, description="Width of the hidden FC layer: the feature dimension."
    )
    dropout: float = Field(
        0.3, ge=0.0, lt=1.0, description="Dropout between the features and the classifier."
    )
    mean: float = Field(
        0.2860, description="Pixel mean of the Fashion-MNIST training split, for normalisation."
    )
    std: float = Field(0.3530, gt=0.0, description="Pixel std of the Fashion-MNIST training split.")


def conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """A 3x3 convolution (same padding, no bias: the BatchNorm has one), BatchNorm, ReLU."""
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class FashionNet(FeatureExtractor):
    """The ``fashion-net`` classifier (see the module docstring).

    Args:
        config: the architecture.
    """

    architecture: ClassVar[str] = EXTRACTOR_ID  # the name its recipe and trainer go by
    Config: ClassVar[type[BaseModel]] = FashionNetConfig
    input_size: ClassVar[tuple[int, int] | None] = (28, 28)
    input_channels: ClassVar[int] = 1

    def __init__(self, config: FashionNetConfig):
        super().__init__()
        self.config = config
        self.id = EXTRACTOR_ID
        self.weights_sha256 = ""  # set by load_fashion_net
        self.feature_dim = config.hidden_dim
        self.num_classes = len(FASHION_MNIST_CLASSES)
        c1, c2 = config.channels
        self.body = nn.Sequential(
            *conv_bn_relu(1, c1),
            *conv_bn_relu(c1, c1),
            nn.MaxPool2d(2),  # 28 -> 14
            *conv_bn_relu(c1, c2),
            *conv_bn_relu(c2, c2),
            nn.MaxPool2d(2),  # 14 -> 7
            nn.Flatten(),
        )
        self.hidden = nn.Linear(c2 * 7 * 7, config.hidden_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_dim, self.num_classes)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features and logits of a batch.

        Args:
            images: ``(N, 1, 28, 28)`` float32 in ``[0, 1]``.

        Returns:
            ``{"features": (N, hidden_dim), "logits": (N, 10)}``, float32.
        """
        x = (images - self.config.mean) / self.config.std  # (N, 1, 28, 28)
        x = self.body(x)  # (N, c2 * 7 * 7)
        features = torch.relu(self.hidden(x))  # (N, hidden_dim)
        logits = self.head(self.dropout(features))  # (N, 10)
        return {"features": features, "logits": logits}


# ---------------------------------------------------------------------------- loading
def bundle_dir() -> Path:
    """The folder of the bundled weights and card: ``zoo_core/builtin``."""
    return Path(str(importlib.resources.files("zoo_core") / "builtin"))


def load_fashion_net() -> FashionNet:
    """The bundled ``fashion-net``, its weights verified against its card, in eval mode.

    Raises:
        ExtractorUnavailableError: the weights or the card are missing.
        ChecksumMismatchError: the weights are not the ones the card pins.
    """
    weights, card_path = bundle_dir() / WEIGHTS_NAME, bundle_dir() / CARD_NAME
    for path in (weights, card_path):
        if not path.is_file():
            raise ExtractorUnavailableError(
                f"{path} is missing from the installed zoo-core; reinstall zoo-core"
            )
    card = json.loads(card_path.read_text(encoding="utf-8"))
    verify_sha256(weights, card["sha256"], f"{EXTRACTOR_ID} weights", "reinstall zoo-core")
    model = FashionNet(FashionNetConfig.model_validate(card["config"]))
    load_state(model, read_tensors(weights, allow_pickle=False), str(weights))
    model.weights_sha256 = card["sha256"]
    return model.requires_grad_(False).eval()

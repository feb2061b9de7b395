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

Training (:func:`train_fashion_net`): AdamW (Loshchilov and Hutter, "Decoupled Weight Decay
Regularization", arXiv 1711.05101) under a one-cycle learning-rate schedule (Smith and Topin,
"Super-Convergence", arXiv 1708.07120), random 28x28 crops of the image zero-padded by 2
pixels and random horizontal flips; everything seeded, so a rerun on the same hardware and
thread count reproduces the weights. The card next to the weights records the test accuracy
and how the weights were made.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import logging
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from zoo_core.data.images import FASHION_MNIST_CLASSES
from zoo_core.evaluation.extractors.base import FeatureExtractor

logger = logging.getLogger(__name__)

EXTRACTOR_ID = "fashion-net"
WEIGHTS_NAME = "fashion-net.safetensors"
CARD_NAME = "fashion-net.json"
DATASET = "fashion-mnist"
EVAL_BATCH_SIZE = 500
WEIGHT_DECAY = 0.01  # AdamW's default, decoupled from the gradient
CROP_PADDING = 2
DEFAULT_EPOCHS = 15
DEFAULT_BATCH_SIZE = 128
DEFAULT_LR = 2e-3


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
    from zoo_core.errors import ExtractorUnavailableError
    from zoo_core.weights.formats import read_tensors
    from zoo_core.weights.sources import verify_sha256
    from zoo_core.weights.state import load_state

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


# --------------------------------------------------------------------------- training
def train_fashion_net(
    out_dir: str | os.PathLike[str],
    *,
    epochs: int,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    limit: int | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train ``fashion-net`` on CPU and write ``fashion-net.safetensors`` and its card.

    Args:
        out_dir: the folder for the two files, created if missing (``zoo_core/builtin`` to
            bundle them).
        epochs: passes over the training examples.
        seed: seeds the initialisation, the shuffling, the augmentation and the dropout.
        batch_size: examples per optimizer step.
        lr: the one-cycle schedule's peak learning rate.
        limit: train on the first ``limit`` training examples only (a quick run); the
            test accuracy is still measured on the whole test split.
        command: the command line to record in the card (default: the call itself).

    Returns:
        The card written to ``fashion-net.json``.

    Raises:
        ConfigError: ``epochs``, ``batch_size`` or ``limit`` below 1.
    """
    from zoo_core._io import atomic_write_bytes
    from zoo_core.data import load_dataset
    from zoo_core.errors import ConfigError
    from zoo_core.weights.formats import encode_safetensors
    from zoo_core.weights.sources import sha256_file

    if min(epochs, batch_size, 1 if limit is None else limit) < 1:
        raise ConfigError(
            f"epochs, batch_size and limit must be >= 1, got {epochs}, {batch_size}, {limit}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, test = load_dataset(DATASET, split="train"), load_dataset(DATASET, split="test")
    x, y = train.x[:limit], train.y[:limit]
    config = FashionNetConfig()
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # seeds dropout without touching the caller's RNG
        torch.manual_seed(seed)
        model = FashionNet(config)
        _fit(model, x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    wall_time = time.perf_counter() - started
    model.eval()
    accuracy = accuracy_on(model, test.x, test.y)
    logger.info("fashion-net: test accuracy %.4f after %.0f s of training", accuracy, wall_time)

    # One metadata entry: safetensors writes its metadata in hash-map order, which varies
    # between runs, and the file's sha256 must not.
    metadata = {"fashion-net": config.model_dump_json()}
    weights = atomic_write_bytes(
        out_dir / WEIGHTS_NAME, encode_safetensors(model.state_dict(), metadata)
    )
    card = {
        "id": EXTRACTOR_ID,
        "weights": WEIGHTS_NAME,
        "sha256": sha256_file(weights),
        "config": config.model_dump(mode="json"),
        "feature_dim": model.feature_dim,
        "features": f"ReLU outputs of the hidden FC layer ({config.hidden_dim} values)",
        "num_classes": model.num_classes,
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_accuracy": accuracy,
        "test": {
            "dataset": DATASET,
            "split": "test",
            "fingerprint": test.fingerprint,
            "examples": len(test),
        },
        "training": {
            "dataset": DATASET,
            "split": "train",
            "fingerprint": train.fingerprint,
            "examples": len(x),
            "limit": limit,
            "epochs": epochs,
            "seed": seed,
            "batch_size": batch_size,
            "lr": lr,
            "optimizer": f"AdamW (weight decay {WEIGHT_DECAY})",
            "schedule": "one-cycle (cosine), peak lr at 30% of the steps",
            "augmentation": f"random 28x28 crop of the image zero-padded by {CROP_PADDING}, "
            "random horizontal flip",
            "device": "cpu",
            "wall_time_s": round(wall_time, 1),
            "hardware": _hardware(),
            "torch": torch.__version__,
            "command": command or _call(out_dir, epochs, seed, batch_size, lr, limit),
        },
    }
    atomic_write_bytes(out_dir / CARD_NAME, (json.dumps(card, indent=2) + "\n").encode())
    return card


def _fit(
    model: FashionNet,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> None:
    """Minimise the cross-entropy of ``model`` on ``(x, y)`` in place."""
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = -(-len(x) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch
    )
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total_loss, correct = 0.0, 0
        batches = order.split(batch_size)
        for index in tqdm(batches, desc=f"fashion-net epoch {epoch + 1}/{epochs}", leave=False):
            images = augment(x[index], generator)  # (B, 1, 28, 28)
            logits = model(images)["logits"]  # (B, 10)
            loss = nn.functional.cross_entropy(logits, y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(index)
            correct += int((logits.argmax(1) == y[index]).sum())
        logger.info(
            "fashion-net epoch %d/%d: loss %.4f, train accuracy %.4f",
            epoch + 1,
            epochs,
            total_loss / len(x),
            correct / len(x),
        )


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crops of the zero-padded images and random horizontal flips.

    Args:
        images: ``(B, 1, H, W)``.
        generator: draws the offsets and the flips.

    Returns:
        ``(B, 1, H, W)``, each image shifted by up to ``CROP_PADDING`` pixels per axis
        (uncovered pixels 0, the background) and mirrored with probability 1/2.
    """
    b, _, h, w = images.shape
    p = CROP_PADDING
    padded = nn.functional.pad(images, (p, p, p, p))  # (B, 1, H + 2p, W + 2p)
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # (B, 1, 2p + 1, 2p + 1, H, W)
    dy, dx = torch.randint(0, 2 * p + 1, (2, b), generator=generator)  # (B,) each
    crops = windows[torch.arange(b), :, dy, dx]  # (B, 1, H, W)
    flip = torch.rand(b, generator=generator) < 0.5  # (B,)
    return torch.where(flip[:, None, None, None], crops.flip(-1), crops)


@torch.inference_mode()
def accuracy_on(model: FashionNet, x: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of ``x`` that ``model`` (in eval mode) classifies as ``y``."""
    correct = 0
    for images, labels in zip(x.split(EVAL_BATCH_SIZE), y.split(EVAL_BATCH_SIZE), strict=True):
        correct += int((model(images)["logits"].argmax(1) == labels).sum())
    return correct / len(x)


def _hardware() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def _call(out_dir: Path, epochs: int, seed: int, batch_size: int, lr: float, limit: Any) -> str:
    return (
        f"train_fashion_net({str(out_dir)!r}, epochs={epochs}, seed={seed}, "
        f"batch_size={batch_size}, lr={lr}, limit={limit})"
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m zoo_core.evaluation.extractors.fashion_net --out zoo_core/builtin``."""
    module = "zoo_core.evaluation.extractors.fashion_net"
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}", description="Train fashion-net and write its two files."
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the two files")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="passes over the data")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything random")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--lr", type=float, default=DEFAULT_LR, help="peak learning rate")
    parser.add_argument("--limit", type=int, default=None, help="use the first N examples")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    card = train_fashion_net(
        args.out,
        epochs=args.epochs,
        seed=args.seed,
        batch_size=args.batch_size,
        lr=args.lr,
        limit=args.limit,
        command=shlex.join(["python", "-m", module, *argv]),
    )
    print(
        f"fashion-net: test accuracy {card['test_accuracy']:.4f}, "
        f"{card['training']['wall_time_s']:.0f} s, sha256 {card['sha256']}"
    )


if __name__ == "__main__":
    main()

"""Training ``fashion-net`` through the shared loop: ``zoo train
zoo_core/recipes/fashion-net.yaml --out runs/fashion-net``.

The classifier minimises the cross-entropy of the Fashion-MNIST training split under AdamW
(Loshchilov and Hutter, "Decoupled Weight Decay Regularization", arXiv 1711.05101) and the
one-cycle schedule (Smith and Topin, "Super-Convergence", arXiv 1708.07120; the recipe's
``schedule.one_cycle``), with random 28x28 crops of each image zero-padded by 2 pixels and
random horizontal flips. The run exports what ``zoo_core/builtin`` bundles: the weights and
a card with their sha256 and the test accuracy.

The data order is the one the bundled weights were first trained with, so that the recipe
reproduces them byte for byte: one ``torch.Generator`` seeded with the recipe's seed draws,
for each epoch, a permutation of the examples (the last, partial batch kept), and for each
batch its crop offsets and flips. Batch ``s`` and its augmentation are thus a function of
``(seed, s)``: a run resumed at step ``s`` replays the draws of the steps before it (a few
milliseconds) and goes on as an uninterrupted run does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from zoo_core._io import atomic_write_bytes
from zoo_core.builtin.extractors.fashion_net import (
    CARD_NAME,
    EXTRACTOR_ID,
    WEIGHTS_NAME,
    FashionNet,
)
from zoo_core.data import Dataset, load_dataset
from zoo_core.errors import ConfigError
from zoo_core.trainer import Trainer
from zoo_core.training.batches import Stacked
from zoo_core.weights.formats import encode_safetensors
from zoo_core.weights.sources import sha256_file

CROP_PADDING = 2
EVAL_BATCH_SIZE = 500


def draw_augmentation(
    size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The random part of :func:`augment` for ``size`` images: row and column offsets in
    ``0 .. 2 * CROP_PADDING`` and flips, ``(size,)`` each, drawn in this order."""
    dy, dx = torch.randint(0, 2 * CROP_PADDING + 1, (2, size), generator=generator)
    flip = torch.rand(size, generator=generator) < 0.5
    return dy, dx, flip


def augment(
    images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor
) -> torch.Tensor:
    """Crops of the zero-padded images and horizontal flips.

    Args:
        images: ``(B, 1, H, W)``.
        dy, dx: ``(B,)`` offsets in ``0 .. 2 * CROP_PADDING``: each image is shifted by
            ``CROP_PADDING - d`` pixels per axis (uncovered pixels 0, the background).
        flip: ``(B,)`` bool: mirror the image.

    Returns:
        ``(B, 1, H, W)``; exact (indexing only, no arithmetic).
    """
    b, _, h, w = images.shape
    p = CROP_PADDING
    padded = nn.functional.pad(images, (p, p, p, p))  # (B, 1, H + 2p, W + 2p)
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # (B, 1, 2p + 1, 2p + 1, H, W)
    crops = windows[torch.arange(b), :, dy, dx]  # (B, 1, H, W)
    return torch.where(flip[:, None, None, None], crops.flip(-1), crops)


class AugmentedImages(torch.utils.data.Dataset):
    """The training split, fetched a batch at a time by keys ``(index, dy, dx, flip)`` (what
    :class:`EpochStream` yields), augmented as the keys say."""

    def __init__(self, data: Dataset):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitems__(self, keys: list[tuple[int, int, int, bool]]) -> Stacked:
        index, dy, dx, flip = (torch.tensor(column) for column in zip(*keys, strict=True))
        images = augment(self.data.x[index], dy, dx, flip)  # (B, 1, 28, 28)
        return Stacked((images, self.data.y[index]))


class EpochStream:
    """Batches of keys ``(index, dy, dx, flip)`` from step ``start`` on (see the module
    docstring): one generator draws each epoch's permutation and each batch's augmentation,
    in the order the steps use them."""

    def __init__(self, size: int, batch_size: int, seed: int, start: int):
        self.size, self.batch_size, self.start = size, batch_size, start
        self.per_epoch = math.ceil(size / batch_size)
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.int64)
        for step in range(start):  # replay: the draws of the steps before `start`
            self._draw(step)

    def _draw(self, step: int) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        position = step % self.per_epoch
        if position == 0:
            self.order = torch.randperm(self.size, generator=self.generator)
        index = self.order[position * self.batch_size : (position + 1) * self.batch_size]
        return index, draw_augmentation(len(index), self.generator)

    def __iter__(self) -> Iterator[list[tuple[int, int, int, bool]]]:
        step = self.start
        while True:
            index, (dy, dx, flip) = self._draw(step)
            yield list(zip(index.tolist(), dy.tolist(), dx.tolist(), flip.tolist(), strict=True))
            step += 1


class FashionNetTrainer(Trainer):
    """Cross-entropy of the classifier on augmented batches (see the module docstring)."""

    architecture: ClassVar[str] = EXTRACTOR_ID
    model_class: ClassVar[type[nn.Module]] = FashionNet

    def dataset(self, data: Dataset) -> AugmentedImages:
        if data.spec.name != "fashion-mnist" or data.y is None:
            raise ConfigError(f"fashion-net trains on fashion-mnist, not {data.spec.name!r}")
        return AugmentedImages(data)

    def batch_order(
        self, size: int, batch_size: int, seed: int, start: int, rank: int, world: int
    ) -> EpochStream:
        if world != 1:
            raise ConfigError("fashion-net trains in one process (its data order is a stream)")
        return EpochStream(size, batch_size, seed, start)

    def training_step(self, batch: Any, step: int, optimizer: str) -> dict[str, Any]:
        images, labels = batch  # (B, 1, 28, 28), (B,)
        logits = self.model(images)["logits"]  # (B, 10)
        loss = nn.functional.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"loss": loss, "accuracy": accuracy.detach()}

    def export(self, model: nn.Module, directory: Path, training: dict[str, Any]) -> Path:
        """The two files ``zoo_core/builtin`` bundles: the weights and their card (sha256,
        architecture, test accuracy, how they were trained)."""
        directory.mkdir(parents=True, exist_ok=True)
        model.eval()
        test = load_dataset("fashion-mnist", split="test")
        # One metadata entry: safetensors writes its metadata in hash-map order, which varies
        # between runs, and the file's sha256 must not.
        metadata = {EXTRACTOR_ID: model.config.model_dump_json()}
        weights = atomic_write_bytes(
            directory / WEIGHTS_NAME, encode_safetensors(model.state_dict(), metadata)
        )
        card = {
            "id": EXTRACTOR_ID,
            "weights": WEIGHTS_NAME,
            "sha256": sha256_file(weights),
            "config": model.config.model_dump(mode="json"),
            "feature_dim": model.feature_dim,
            "features": f"ReLU outputs of the hidden FC layer ({model.feature_dim} values)",
            "num_classes": model.num_classes,
            "parameters": sum(p.numel() for p in model.parameters()),
            "test_accuracy": accuracy(model, test.x, test.y),
            "test": {
                "dataset": "fashion-mnist",
                "split": "test",
                "fingerprint": test.fingerprint,
                "examples": len(test),
            },
            "training": training,
        }
        text = json.dumps(card, indent=2) + "\n"
        atomic_write_bytes(directory / CARD_NAME, text.encode())
        return directory


@torch.inference_mode()
def accuracy(model: FashionNet, x: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of ``x`` that ``model`` (in eval mode) classifies as ``y``."""
    correct = 0
    for images, labels in zip(x.split(EVAL_BATCH_SIZE), y.split(EVAL_BATCH_SIZE), strict=True):
        correct += int((model(images)["logits"].argmax(1) == labels).sum())
    return correct / len(x)

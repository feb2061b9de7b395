"""The ``Trainer`` interface: a family writes ``training_step``; the core's shared loop
(``zoo_core.training``) owns the rest: optimizer steps, EMA, mixed precision, clipping,
logging, checkpoints, exact resume and distributed data parallel."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from zoo_core.generator import Generator


class NoTrainerOptions(BaseModel):
    """A trainer with no options of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Trainer(ABC):
    """Trains one architecture.

    Class attributes:
        architecture: the architecture name it trains (as registered in ``zoo_trainers``).
        Config: the pydantic model of the trainer's own options (a recipe's ``trainer:``).
        model_class: what it trains when that is not the Generator registered as its
            ``architecture`` (e.g. a feature extractor): a module class with a pydantic
            ``Config`` and an ``architecture`` name, built as ``model_class(config)`` from the
            recipe's ``config``; ``None`` (the default): the registered Generator.
        optimizers: names of the optimizers it needs, in the order the loop steps them
            (adversarial trainers name several, e.g. ``("discriminator", "generator")``);
            each is configured in the recipe's ``train.optimizers`` with its own cadence.

    Args:
        model: the Generator being trained.
        config: the validated ``Config``.

    Every random number a training step draws must come from ``torch``'s global generator
    (which the loop seeds, checkpoints and restores) or from ``zoo_core.seeding.Noise``, so
    that a resumed run is bit-identical to an uninterrupted one.
    """

    architecture: ClassVar[str]
    Config: ClassVar[type[BaseModel]] = NoTrainerOptions
    model_class: ClassVar[type[nn.Module] | None] = None
    optimizers: ClassVar[tuple[str, ...]] = ("model",)

    def __init__(self, model: Generator, config: BaseModel):
        self.model = model
        self.config = config

    def modules(self) -> dict[str, nn.Module]:
        """Every module the trainer updates, by name; ``"model"`` is the Generator.

        Adversarial trainers add their discriminator here, so that the loop checkpoints it,
        moves it to the device and synchronises its gradients across processes.
        """
        return {"model": self.model}

    def parameters(self, optimizer: str) -> list[nn.Parameter]:
        """The parameters optimizer ``optimizer`` updates (all of the model's by default)."""
        return list(self.model.parameters())

    def dataset(self, data: Any) -> torch.utils.data.Dataset:
        """The torch dataset the loop draws batches from (the loaded dataset by default).

        Override to turn a loaded dataset into training examples (e.g. text into token
        windows); examples must depend only on their index, never on worker RNG.
        """
        return data

    def batch_order(
        self, size: int, batch_size: int, seed: int, start: int, rank: int, world: int
    ) -> Iterable[list[Any]] | None:
        """The batches of dataset indices (or keys of the trainer's ``dataset``) from step
        ``start`` on, this process's share of each; ``None`` (the default): the loop's own
        order (``zoo_core.training.loop.BatchOrder``: a permutation per epoch, drawn from
        the seed and the epoch).

        Override for another order. Batch ``s`` must be a function of ``(seed, s)`` alone,
        whatever ``start`` is, so that a resumed run draws what an uninterrupted one does.
        """
        return None

    def export(self, model: nn.Module, directory: Path, training: dict[str, Any]) -> Path:
        """Write the trained ``model`` into ``directory`` (the run's ``model/``) at the end
        of a finished run, with ``training`` (what ``training.json`` records); return the
        folder. Default: ``model.save_pretrained(directory, training=training)``."""
        return model.save_pretrained(directory, training=training)

    @abstractmethod
    def training_step(self, batch: Any, step: int, optimizer: str) -> dict[str, Any]:
        """One update of optimizer ``optimizer`` on ``batch``.

        Called once per optimizer due at ``step`` (``step % every == 0``), in the order of
        ``optimizers``, so that a generator's loss sees the discriminator just updated.

        Returns:
            ``"loss"``: the scalar tensor to back-propagate, plus any metrics to log (floats
            or 0-d tensors), which the loop records as ``<optimizer>/<name>``.
        """

    def summary(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """What the run's model card should say of its training beyond the loop's figures
        (e.g. a GAN's diagnostics), from the records of ``metrics.jsonl`` in step order.

        Called once, at the end of a finished run, on the main process; recorded as
        ``diagnostics`` in ``training.json`` and the card. Default: nothing.
        """
        return {}

"""The ``Trainer`` interface: a family writes ``training_step``; the core's shared loop
(``zoo_core.training``) owns the rest: optimizer steps, EMA, mixed precision, clipping,
logging, checkpoints, exact resume and distributed data parallel."""

from __future__ import annotations

from abc import ABC, abstractmethod
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

"""The ``Trainer`` interface: a family writes ``training_step``; the core's shared loop owns
the rest (optimizer steps, EMA, mixed precision, clipping, logging, checkpoints, resume,
distributed data parallel)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

from zoo_core.generator import Generator


class Trainer(ABC):
    """Trains one architecture.

    Class attributes:
        architecture: the architecture name it trains (as registered in zoo_trainers).
        optimizers: names of the optimizers it needs, each stepped by the shared loop at its
            own cadence (adversarial families name several, e.g. ``("generator",
            "discriminator")``).

    Args:
        model: the Generator being trained.
    """

    architecture: ClassVar[str]
    optimizers: ClassVar[tuple[str, ...]] = ("model",)

    def __init__(self, model: Generator):
        self.model = model

    def parameters(self, optimizer: str) -> list[torch.nn.Parameter]:
        """The parameters that optimizer ``optimizer`` updates (all of them by default)."""
        return list(self.model.parameters())

    @abstractmethod
    def training_step(self, batch: Any, step: int) -> dict[str, Any]:
        """One step on ``batch``.

        Returns:
            Metrics to log (floats), plus for each optimizer name in ``optimizers`` whose
            update is due at this step, the loss tensor to back-propagate under that name.
        """

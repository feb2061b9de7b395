"""The shared training loop (``zoo train``): recipes, checkpoints, exact resume, DDP."""

from zoo_core.training.config import (
    EmaConfig,
    OptimizerConfig,
    Recipe,
    ScheduleConfig,
    TrainConfig,
    load_recipe,
)
from zoo_core.training.loop import EXIT_INTERRUPTED, TrainResult, train

__all__ = [
    "EXIT_INTERRUPTED",
    "EmaConfig",
    "OptimizerConfig",
    "Recipe",
    "ScheduleConfig",
    "TrainConfig",
    "TrainResult",
    "load_recipe",
    "train",
]

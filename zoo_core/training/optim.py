"""What the shared loop steps with: the optimizers a recipe names, the learning-rate (and
momentum) schedule as a function of the step, and the exponential moving average of the
weights."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from zoo_core.errors import ConfigError
from zoo_core.training.config import OneCycleConfig, OptimizerConfig, TrainConfig


def learning_rate(config: TrainConfig) -> Callable[[int, float], tuple[float, float | None]]:
    """``rate(step, peak)``: the learning rate of step ``step`` for an optimizer of peak lr
    ``peak``, and the momentum (beta1) the schedule sets (``None``: it sets none). A
    function of the step alone, so a resumed run repeats it exactly."""
    if config.schedule.one_cycle is not None:
        return _one_cycle(config.schedule.one_cycle, config.steps)
    warmup, total = config.schedule.warmup_steps, config.steps
    floor, decay = config.schedule.min_lr_ratio, config.schedule.decay

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if decay == "constant" or total <= warmup:
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        shape = 1 - progress if decay == "linear" else 0.5 * (1 + math.cos(math.pi * progress))
        return floor + (1 - floor) * shape

    return lambda step, peak: (peak * factor(step), None)


def _one_cycle(cfg: OneCycleConfig, total: int):
    """The one-cycle policy, computed as ``torch.optim.lr_scheduler.OneCycleLR`` (cosine
    annealing, two phases) computes it, operation for operation, so that a run under either
    gets the same floats."""
    low, high = cfg.momentum if cfg.momentum is not None else (None, None)

    def cosine(start: float, end: float, pct: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def rate(step: int, peak: float) -> tuple[float, float | None]:
        initial = peak / cfg.initial_div
        phases = [  # (end step, lr from, lr to, momentum from, momentum to)
            (float(cfg.pct_start * total) - 1, initial, peak, high, low),
            (total - 1, peak, initial / cfg.final_div, low, high),
        ]
        begin = 0.0
        for i, (end, lr_from, lr_to, m_from, m_to) in enumerate(phases):
            if step <= end or i == len(phases) - 1:
                pct = (step - begin) / (end - begin)
                momentum = None if m_from is None else cosine(m_from, m_to, pct)
                return cosine(lr_from, lr_to, pct), momentum
            begin = end
        raise AssertionError("unreachable: the last phase takes every later step")

    return rate


def build_optimizer(
    name: str, params: list[nn.Parameter], cfg: OptimizerConfig
) -> torch.optim.Optimizer:
    """The optimizer ``name`` of a recipe over ``params``."""
    if not params:
        raise ConfigError(f"optimizer {name!r} has no parameters to update")
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)


class Ema:
    """EMA of a module's floating tensors (parameters and buffers); others are copied."""

    def __init__(self, model: nn.Module, decay: float, start: int):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.start = decay, start
        pairs = list(zip(self.model.state_dict().values(), model.state_dict().values(),
                         strict=True))  # fmt: skip
        self._floats = [(a, b) for a, b in pairs if a.is_floating_point()]
        self._others = [(a, b) for a, b in pairs if not a.is_floating_point()]

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        weight = 1.0 if step < self.start else 1.0 - self.decay  # a copy before the start
        if self._floats:
            ours, theirs = zip(*self._floats, strict=True)
            torch._foreach_lerp_(list(ours), list(theirs), weight)
        for ours, theirs in self._others:
            ours.copy_(theirs)

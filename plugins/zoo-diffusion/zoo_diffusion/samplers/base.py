"""The interface every sampler of the reverse process implements, and its shared pieces."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ValidationError

from zoo_core.errors import ConfigError, UnknownOptionError

from ..schedule import NoiseSchedule, ScheduleConfig, validation_message

__all__ = ["Sampler", "linspace_timesteps", "spaced_timesteps", "trailing_timesteps"]


class Sampler(ABC):
    """One algorithm that turns x_T into a sample, one network evaluation per step.

    Args:
        schedule: the noise schedule the network was trained with.
        options: an instance of the sampler's ``Options`` (``None``: the defaults). Build it
            with :meth:`make_options` to get a :class:`ConfigError` for a bad value.

    Usage: ``ts = sampler.set_timesteps(steps)``, then for each ``t`` of ``ts`` in order,
    ``x = sampler.step(model(x, t), t, x, noise)``. A sampler never draws random numbers:
    where ``stochastic`` is true the caller passes ``noise`` (standard normal, shaped like
    ``x``), drawn under the seeding rule. Starting again at the first timestep starts a new
    trajectory, so one sampler serves batch after batch.
    """

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]
    stochastic: bool = False  # whether step() needs fresh noise

    def __init__(self, schedule: NoiseSchedule, options: BaseModel | None = None):
        if options is None:
            options = self.Options()
        if not isinstance(options, self.Options):
            raise TypeError(
                f"{self.name} sampler: options must be {self.Options.__qualname__}, "
                f"got {type(options).__name__}"
            )
        self.schedule = schedule
        self.options = options
        self.timesteps = torch.empty(0, dtype=torch.int64)
        self._ts: list[int] = []
        self._i = -1  # index in self._ts of the last step taken

    @classmethod
    def make_options(cls, **values: Any) -> BaseModel:
        """The sampler's validated ``Options``.

        Raises:
            UnknownOptionError: a name the sampler does not define.
            ConfigError: a value out of range.
        """
        unknown = sorted(set(values) - set(cls.Options.model_fields))
        if unknown:
            known = ", ".join(cls.Options.model_fields) or "none"
            raise UnknownOptionError(
                f"the {cls.name} sampler has no option {unknown[0]!r}; its options are: {known}"
            )
        try:
            return cls.Options(**values)
        except ValidationError as error:
            raise ConfigError(f"{cls.name} sampler: {validation_message(error)}") from None

    def set_timesteps(self, steps: int) -> torch.Tensor:
        """Choose the timesteps of a ``steps``-step trajectory.

        Returns:
            ``(steps,)`` int64, strictly descending, within ``[0, T)``.

        Raises:
            ConfigError: ``steps`` below 1 or above the training timesteps T, or a spacing
                that cannot give ``steps`` distinct timesteps.
        """
        total = self.schedule.num_train_timesteps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= total:
            raise ConfigError(
                f"{self.name} sampler: steps must be an integer from 1 to {total} "
                f"(the model's training timesteps), got {steps!r}"
            )
        ts = self._timesteps(steps)
        if ts[0] >= total or ts[-1] < 0 or any(a <= b for a, b in zip(ts, ts[1:], strict=False)):
            raise ConfigError(
                f"{self.name} sampler: {steps} steps give the timesteps {_few(ts)} with this "
                f"spacing, not {steps} distinct ones in [0, {total}); take fewer steps or "
                f"another timestep spacing"
            )
        self._ts = ts
        self._i = -1
        self.timesteps = torch.tensor(ts, dtype=torch.int64)
        return self.timesteps.clone()

    @abstractmethod
    def _timesteps(self, steps: int) -> list[int]:
        """The descending timesteps of a ``steps``-step trajectory."""

    @abstractmethod
    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        x: torch.Tensor,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One step x_t -> x_prev.

        Args:
            model_output: ``(B, *shape)`` the network's output at ``(x, t)``.
            t: the current timestep, the next one of those ``set_timesteps`` returned.
            x: ``(B, *shape)`` the current sample x_t.
            noise: ``(B, *shape)`` standard normal, required where ``stochastic``.

        Returns:
            ``(B, *shape)`` the sample at the next (smaller) timestep, or the final sample.
        """

    def _advance(self, t: int | torch.Tensor) -> int:
        """Index of ``t`` in the timesteps: the first one starts a new trajectory, any other
        must follow the last step taken."""
        if not self._ts:
            raise RuntimeError(f"{self.name} sampler: call set_timesteps() before step()")
        t = int(t)
        i = 0 if t == self._ts[0] else self._i + 1
        if i >= len(self._ts) or self._ts[i] != t:
            expected = self._ts[i] if 0 < i < len(self._ts) else self._ts[0]
            raise ValueError(
                f"{self.name} sampler: step() got t={t}, expected t={expected}; call step() "
                f"with the timesteps of set_timesteps(), in order"
            )
        self._i = i
        return i

    def _need_noise(self, noise: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        if noise is None:
            raise ValueError(f"{self.name} sampler: this step needs noise shaped like x")
        if noise.shape != x.shape:
            raise ValueError(
                f"{self.name} sampler: noise has shape {tuple(noise.shape)}, x has {tuple(x.shape)}"
            )
        return noise


def spaced_timesteps(config: ScheduleConfig, steps: int) -> list[int]:
    """``steps`` descending timesteps out of T, per ``config.timestep_spacing``.

    The spacings of Lin et al. (arXiv 2305.08891, Table 2), computed as diffusers'
    DDPMScheduler and DDIMScheduler do (same float arithmetic, so the same rounding):
    leading: k * (T // steps) + steps_offset; trailing: round(T - k * T / steps) - 1;
    linspace: round(k * (T - 1) / (steps - 1)).
    """
    total = config.num_train_timesteps
    if config.timestep_spacing == "leading":
        ratio = total // steps
        return [k * ratio + config.steps_offset for k in reversed(range(steps))]
    if config.timestep_spacing == "trailing":
        return trailing_timesteps(total, steps)
    if steps == 1:
        return [0]  # numpy's linspace(0, T - 1, 1)
    return linspace_timesteps(total - 1, steps)


def linspace_timesteps(stop: int, count: int) -> list[int]:
    """round(linspace(0, stop, count)), descending; numpy's float arithmetic and rounding."""
    delta = stop / (count - 1)
    values = torch.arange(count, dtype=torch.float64) * delta
    values[-1] = stop
    return values.round().to(torch.int64).flip(0).tolist()


def trailing_timesteps(total: int, steps: int) -> list[int]:
    """round(arange(T, 0, -T / steps)) - 1, its first ``steps`` values, descending.

    numpy's arange fills ``T + k * delta`` with ``delta = (T - T / steps) - T``; its length
    can come out one too long through rounding (steps = 61 of 1000, say: then diffusers'
    last timestep is -1), which taking ``steps`` values avoids.
    """
    delta = (total - total / steps) - total
    values = total + torch.arange(steps, dtype=torch.float64) * delta
    return (values.round().to(torch.int64) - 1).tolist()


def _few(values: list[int], limit: int = 6) -> str:
    shown = ", ".join(map(str, values[:limit]))
    return f"[{shown}{', ...' if len(values) > limit else ''}]"

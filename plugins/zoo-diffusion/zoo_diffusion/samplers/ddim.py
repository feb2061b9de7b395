"""The generalised sampler of Song, Meng & Ermon, "Denoising Diffusion Implicit Models"
(arXiv 2010.02502): eq. 12 with sigma_t(eta) of eq. 16; eta = 0 is the deterministic DDIM,
eta = 1 DDPM's posterior variance.

What differs from the paper, to sample as diffusers' DDIMScheduler does: the predicted x_0
is clipped (``clip_sample``) while the predicted noise is not re-derived from it; the step
from t goes to t - T // steps whatever the timestep spacing (for leading spacing that is
the next timestep; for trailing and linspace it may not be); the last step goes to
alpha_bar = 1, or to alpha_bar_0 when ``set_alpha_to_one`` is false.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..schedule import NoiseSchedule
from .base import Sampler, spaced_timesteps

__all__ = ["DDIMSampler"]


class DDIMSampler(Sampler):
    """DDIM (eta = 0) and its stochastic family (eta > 0)."""

    name = "ddim"

    class Options(BaseModel):
        """Options of the DDIM sampler."""

        model_config = ConfigDict(extra="forbid", frozen=True)

        eta: float = Field(
            0.0,
            ge=0,
            description="Scale of the noise of each step, eq. 16: 0 is deterministic DDIM, "
            "1 is DDPM's posterior variance.",
        )

    def __init__(self, schedule: NoiseSchedule, options: BaseModel | None = None):
        super().__init__(schedule, options)
        self.eta = float(self.options.eta)
        self.stochastic = self.eta > 0
        self._stride = 0

    def _timesteps(self, steps: int) -> list[int]:
        self._stride = self.schedule.num_train_timesteps // steps
        return spaced_timesteps(self.schedule.config, steps)

    def _alpha_bar_prev(self, prev_t: int) -> float:
        if prev_t >= 0:
            return self.schedule.alpha_bar(prev_t)
        return 1.0 if self.schedule.config.set_alpha_to_one else self.schedule.alpha_bar(0)

    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        x: torch.Tensor,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        i = self._advance(t)
        t = self._ts[i]
        prev_t = t - self._stride
        a_t = self.schedule.alpha_bar(t)  # alpha_t of the paper (= alpha_bar_t of DDPM)
        a_prev = self._alpha_bar_prev(prev_t)
        # "predicted x_0" of eq. 12 and the noise eps_theta(x_t), (B, *shape)
        x0, eps = self.schedule.predict_x0_and_eps(model_output, x, t)
        x0 = self.schedule.clip(x0)
        # sigma_t(eta) = eta sqrt((1 - a_prev) / (1 - a_t)) sqrt(1 - a_t / a_prev), eq. 16
        sigma = self.eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5
        # "direction pointing to x_t" of eq. 12: sqrt(1 - a_prev - sigma^2) eps
        direction = (1 - a_prev - sigma**2) ** 0.5 * eps
        # x_{t-1} = sqrt(a_prev) x_0 + direction + sigma eps_t, eq. 12
        x_prev = a_prev**0.5 * x0 + direction
        if self.eta > 0:
            x_prev = x_prev + sigma * self._need_noise(noise, x)
        return x_prev

"""Ancestral sampling of Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models"
(arXiv 2006.11239), Algorithm 2 with the posterior of eq. 6-7.

What differs from the paper: with fewer steps than the training timesteps T, the step from
t goes to the next timestep of the spacing (leading by default) through the skip-step
posterior q(x_prev | x_t, x_0), and the predicted x_0 is clipped first, as diffusers'
DDPMScheduler does; noise is added at every step whose t is above 0.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict

from .base import Sampler, spaced_timesteps

__all__ = ["DDPMSampler"]


class DDPMSampler(Sampler):
    """DDPM's ancestral sampler; the variance (fixed_small / fixed_large) and the clipping
    come from the schedule's config."""

    name = "ddpm"
    stochastic = True

    class Options(BaseModel):
        """The DDPM sampler has no options of its own."""

        model_config = ConfigDict(extra="forbid", frozen=True)

    def _timesteps(self, steps: int) -> list[int]:
        return spaced_timesteps(self.schedule.config, steps)

    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        x: torch.Tensor,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        i = self._advance(t)
        t = self._ts[i]
        prev_t = self._ts[i + 1] if i + 1 < len(self._ts) else -1  # -1: alpha_bar = 1
        # x_0 predicted from the network's output, eq. 15 (or from v), then clipped
        x0, _ = self.schedule.predict_x0_and_eps(model_output, x, t)  # (B, *shape)
        x0 = self.schedule.clip(x0)
        # mean and variance of q(x_{prev} | x_t, x_0), eq. 6-7
        mean, variance = self.schedule.posterior(x0, x, t, prev_t)  # (B, *shape), float
        if t == 0:
            return mean  # Algorithm 2, line 4 with z = 0 at the last step
        # x_{t-1} = mean + sigma_t z, z ~ N(0, I): Algorithm 2, lines 3-4
        return mean + variance**0.5 * self._need_noise(noise, x)

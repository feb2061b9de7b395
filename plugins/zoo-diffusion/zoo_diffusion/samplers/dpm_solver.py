"""Multistep second-order DPM-Solver++ with data prediction: Lu, Zhou, Bao, Chen, Li & Zhu,
"DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models"
(arXiv 2211.01095), Algorithm 2 (DPM-Solver++(2M)).

Notation of the paper: alpha_t = sqrt(alpha_bar_t), sigma_t = sqrt(1 - alpha_bar_t),
lambda_t = log(alpha_t / sigma_t) (the half log-SNR), h_i = lambda_{t_i} - lambda_{t_{i-1}},
x_theta the data prediction (the x_0 the network's output implies).

What differs from the paper, to sample as diffusers' DPMSolverMultistepScheduler does with
its defaults (algorithm_type "dpmsolver++", solver_order 2, solver_type "midpoint",
lower_order_final true, final_sigmas_type "zero"): the timesteps are round(linspace(0, T-1,
steps + 1)) without the 0 (``timestep_spacing``), and the trajectory ends past the last of
them, at sigma = 0 (x_0 itself) or at the noise level of t = 0 (``final_sigmas_type``); the
last step is first-order when it ends at sigma = 0 or takes fewer than 15 steps
(``lower_order_final``). The predicted x_0 is not clipped (``clip_sample`` is for DDPM and
DDIM). The update runs in float32 at least.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..schedule import NoiseSchedule
from .base import Sampler, linspace_timesteps, trailing_timesteps

__all__ = ["DPMSolverSampler"]


class DPMSolverSampler(Sampler):
    """DPM-Solver++(2M): deterministic, one network evaluation per step."""

    name = "dpm-solver++"

    class Options(BaseModel):
        """Options of the DPM-Solver++ sampler (diffusers' names and defaults)."""

        model_config = ConfigDict(extra="forbid", frozen=True)

        timestep_spacing: Literal["linspace", "leading", "trailing"] = Field(
            "linspace",
            description="How the timesteps are picked (leading adds the schedule's steps_offset).",
        )
        final_sigmas_type: Literal["zero", "sigma_min"] = Field(
            "zero",
            description="Where the last step ends: at sigma = 0 (the predicted x_0) or at "
            "the noise level of t = 0.",
        )
        lower_order_final: bool = Field(
            True, description="Take the last step first-order when there are fewer than 15."
        )

    def __init__(self, schedule: NoiseSchedule, options: BaseModel | None = None):
        super().__init__(schedule, options)
        self._prev_x0: torch.Tensor | None = None  # x_theta at the previous timestep
        self._prev_lambda = 0.0  # lambda of the previous timestep

    def _timesteps(self, steps: int) -> list[int]:
        total = self.schedule.num_train_timesteps
        spacing = self.options.timestep_spacing
        if spacing == "linspace":
            return linspace_timesteps(total - 1, steps + 1)[:-1]  # steps + 1 points, not 0
        if spacing == "leading":
            ratio = total // (steps + 1)
            offset = self.schedule.config.steps_offset
            return [k * ratio + offset for k in range(steps, 0, -1)]
        return trailing_timesteps(total, steps)

    def _alpha_sigma(self, i: int) -> tuple[float, float]:
        """(alpha, sigma) of the i-th point of the trajectory; i = steps is its end."""
        if i < len(self._ts):
            a = self.schedule.alpha_bar(self._ts[i])
        elif self.options.final_sigmas_type == "zero":
            return 1.0, 0.0
        else:
            a = self.schedule.alpha_bar(0)
        return a**0.5, (1 - a) ** 0.5

    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        x: torch.Tensor,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        i = self._advance(t)
        steps = len(self._ts)
        work = torch.promote_types(x.dtype, torch.float32)
        # data prediction x_theta(x_{t_{i-1}}, t_{i-1}), (B, *shape)
        x0, _ = self.schedule.predict_x0_and_eps(model_output.to(work), x.to(work), self._ts[i])
        alpha_s, sigma_s = self._alpha_sigma(i)  # the current point t_{i-1} of the paper
        alpha_t, sigma_t = self._alpha_sigma(i + 1)  # the point t_i this step reaches
        lambda_s = math.log(alpha_s / sigma_s)
        last = i == steps - 1
        first_order = (
            i == 0
            or (last and self.options.final_sigmas_type == "zero")
            or (last and self.options.lower_order_final and steps < 15)
        )
        if sigma_t == 0:
            # the first-order update below as h -> infinity: exp(-h) -> 0 leaves x_theta
            x_next = x0
        else:
            lambda_t = math.log(alpha_t / sigma_t)
            h = lambda_t - lambda_s
            if first_order:
                d = x0  # Algorithm 2, first step: DPM-Solver++1, the data-prediction DDIM
            else:
                # r_i = h_{i-1} / h_i; D_i = (1 + 1/(2 r_i)) x_theta_{i-1} - 1/(2 r_i)
                # x_theta_{i-2}: Algorithm 2, loop body
                r = (lambda_s - self._prev_lambda) / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * self._prev_x0
            # x_{t_i} = (sigma_{t_i} / sigma_{t_{i-1}}) x_{t_{i-1}} - alpha_{t_i} (e^{-h_i} - 1) D_i
            x_next = (sigma_t / sigma_s) * x.to(work) - (alpha_t * math.expm1(-h)) * d
        self._prev_x0, self._prev_lambda = x0, lambda_s
        return x_next.to(x.dtype)

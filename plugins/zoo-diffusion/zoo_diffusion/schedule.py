"""The variance-preserving noise schedule of DDPM and the closed forms every sampler uses.

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (arXiv 2006.11239): the
forward process q(x_t | x_0) (eq. 4), the posterior q(x_{t-1} | x_t, x_0) (eq. 6-7) and the
x_0 implied by a predicted noise (eq. 15). The v-parameterisation is from Salimans & Ho,
"Progressive Distillation for Fast Sampling of Diffusion Models" (arXiv 2202.00512, Sec. 4).

What differs from the paper: timesteps are 0-based (t = 0 ... T-1, as in diffusers), the
posterior takes any earlier timestep ``prev_t`` (the skip-step posterior that strided
samplers need; ``prev_t < 0`` means the clean data, alpha_bar = 1), and the schedule is
computed in float64 (diffusers computes it in float32; the two agree to ~1e-6 relative).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zoo_core.errors import ConfigError

__all__ = [
    "NoiseSchedule",
    "ScheduleConfig",
    "schedule_config_from_diffusers",
    "validation_message",
]


class ScheduleConfig(BaseModel):
    """How the noise schedule of a DDPM-family model is built and sampled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_train_timesteps: int = Field(
        1000, ge=1, description="Number T of diffusion steps the model was trained with."
    )
    beta_start: float = Field(
        1e-4, gt=0, lt=1, description="beta_1 of the linear and scaled_linear schedules."
    )
    beta_end: float = Field(
        0.02, gt=0, lt=1, description="beta_T of the linear and scaled_linear schedules."
    )
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = Field(
        "linear",
        description="linear: Ho et al.; scaled_linear: linear in sqrt(beta) (latent "
        "diffusion); squaredcos_cap_v2: the cosine schedule of Nichol & Dhariwal "
        "(arXiv 2102.09672, eq. 17), betas capped at 0.999.",
    )
    prediction_type: Literal["epsilon", "v_prediction"] = Field(
        "epsilon", description="What the network predicts: the noise, or v (Salimans & Ho)."
    )
    variance_type: Literal["fixed_small", "fixed_large"] = Field(
        "fixed_small",
        description="Variance of the DDPM sampler's steps: the posterior variance "
        "beta-tilde (fixed_small) or beta (fixed_large); Ho et al. Sec. 3.2.",
    )
    clip_sample: bool = Field(
        True, description="Clip the predicted x_0 to +-clip_sample_range (DDPM and DDIM)."
    )
    clip_sample_range: float = Field(
        1.0, gt=0, description="Bound of the predicted x_0 when clip_sample is true."
    )
    timestep_spacing: Literal["leading", "trailing", "linspace"] = Field(
        "leading",
        description="How the DDPM and DDIM samplers pick their timesteps when they take "
        "fewer steps than T (Lin et al., arXiv 2305.08891, Table 2). DPM-Solver++ has its "
        "own option (default linspace, as in diffusers).",
    )
    steps_offset: int = Field(
        0, ge=0, description="Added to every timestep of the leading spacing."
    )
    set_alpha_to_one: bool = Field(
        True,
        description="DDIM's final step goes to alpha_bar = 1 (true) or to alpha_bar_0 (false).",
    )


def _cosine_betas(steps: int, max_beta: float = 0.999) -> torch.Tensor:
    """Betas of the cosine schedule (Nichol & Dhariwal, eq. 17): (T,) float64."""

    def alpha_bar(s: float) -> float:  # f(t) / f(0) up to the constant, eq. 17
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [
        min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), max_beta) for i in range(steps)
    ]
    return torch.tensor(betas, dtype=torch.float64)


def _betas(config: ScheduleConfig) -> torch.Tensor:
    """beta_t for t = 0 ... T-1, (T,) float64."""
    steps = config.num_train_timesteps
    if config.beta_schedule == "linear":
        return torch.linspace(config.beta_start, config.beta_end, steps, dtype=torch.float64)
    if config.beta_schedule == "scaled_linear":
        root = torch.linspace(
            config.beta_start**0.5, config.beta_end**0.5, steps, dtype=torch.float64
        )
        return root**2
    return _cosine_betas(steps)


class NoiseSchedule:
    """beta_t, alpha_t = 1 - beta_t and alpha_bar_t = prod_{s <= t} alpha_s, with the closed
    forms of the forward process and its posterior.

    Args:
        config: the schedule's configuration.

    Timesteps ``t`` are an ``int`` (one timestep for the whole batch) or a ``(B,)`` integer
    tensor (one per sample, as in training). Tensors ``x`` are ``(B, *shape)``; results keep
    their dtype and device.
    """

    def __init__(self, config: ScheduleConfig):
        self.config = config
        self.betas = _betas(config)  # (T,) float64
        self.alphas = 1.0 - self.betas  # (T,)
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)  # (T,) alpha_bar_t

    @property
    def num_train_timesteps(self) -> int:
        return self.config.num_train_timesteps

    def alpha_bar(self, t: int) -> float:
        """alpha_bar_t of one timestep; 1.0 for ``t < 0`` (the clean data)."""
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])

    def _alpha_bar_like(self, t: int | torch.Tensor, x: torch.Tensor) -> float | torch.Tensor:
        """alpha_bar_t as a float, or ``(B, 1, ..., 1)`` broadcastable to ``x`` for ``(B,)`` t."""
        if not isinstance(t, torch.Tensor):
            return self.alpha_bar(int(t))
        table = self.alphas_cumprod.to(x.device)
        t = t.to(x.device)
        values = torch.where(t < 0, torch.ones_like(table[:1]), table[t.clamp(min=0)])  # (B,)
        return values.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: int | torch.Tensor):
        """Sample of q(x_t | x_0): sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise (eq. 4).

        Args:
            x0: ``(B, *shape)`` clean data.
            noise: ``(B, *shape)`` standard normal.
            t: an int, or ``(B,)`` timesteps.

        Returns:
            ``(B, *shape)`` x_t.
        """
        a = self._alpha_bar_like(t, x0)
        return a**0.5 * x0 + (1 - a) ** 0.5 * noise

    def velocity(self, x0: torch.Tensor, noise: torch.Tensor, t: int | torch.Tensor):
        """The v-target v = sqrt(alpha_bar_t) noise - sqrt(1 - alpha_bar_t) x_0 (Salimans &
        Ho, Sec. 4: v = alpha_t eps - sigma_t x), ``(B, *shape)``."""
        a = self._alpha_bar_like(t, x0)
        return a**0.5 * noise - (1 - a) ** 0.5 * x0

    def predict_x0_and_eps(
        self, model_output: torch.Tensor, x_t: torch.Tensor, t: int | torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The x_0 and the noise that a network output implies at x_t (no clipping).

        epsilon: x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t) (eq. 15).
        v_prediction: x_0 = sqrt(alpha_bar_t) x_t - sqrt(1 - alpha_bar_t) v and
        eps = sqrt(alpha_bar_t) v + sqrt(1 - alpha_bar_t) x_t (Salimans & Ho, Sec. 4).

        Returns:
            ``(x0, eps)``, each ``(B, *shape)``.
        """
        a = self._alpha_bar_like(t, x_t)
        if self.config.prediction_type == "epsilon":
            eps = model_output
            x0 = (x_t - (1 - a) ** 0.5 * eps) / a**0.5
        else:
            x0 = a**0.5 * x_t - (1 - a) ** 0.5 * model_output
            eps = a**0.5 * model_output + (1 - a) ** 0.5 * x_t
        return x0, eps

    def clip(self, x0: torch.Tensor) -> torch.Tensor:
        """The predicted x_0 clipped to +-clip_sample_range when ``clip_sample`` is set."""
        if not self.config.clip_sample:
            return x0
        bound = self.config.clip_sample_range
        return x0.clamp(-bound, bound)

    def posterior(
        self,
        x0: torch.Tensor,
        x_t: torch.Tensor,
        t: int | torch.Tensor,
        prev_t: int | torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, float | torch.Tensor]:
        """Mean and variance of q(x_{prev_t} | x_t, x_0) (eq. 6-7), ``prev_t`` = t - 1 by default.

        With a = alpha_bar_t, a' = alpha_bar_{prev_t} (1 for prev_t < 0) and the step's
        beta = 1 - a / a' (beta_t itself when prev_t = t - 1), eq. 7 reads
        mean = sqrt(a') beta / (1 - a) x_0 + sqrt(1 - beta) (1 - a') / (1 - a) x_t and
        beta-tilde = (1 - a') / (1 - a) beta. The variance is beta-tilde for ``fixed_small``
        and beta for ``fixed_large`` (Ho et al. Sec. 3.2); at t = 0 that is beta_0, as in
        diffusers (the original code used beta-tilde_1 there; no noise is added at t = 0).

        Returns:
            ``(mean, variance)``: mean ``(B, *shape)``; variance a float for an int ``t``,
            else ``(B, 1, ..., 1)``.
        """
        if prev_t is None:
            prev_t = t - 1
        a = self._alpha_bar_like(t, x_t)
        a_prev = self._alpha_bar_like(prev_t, x_t)
        beta = 1 - a / a_prev
        mean = (a_prev**0.5 * beta / (1 - a)) * x0 + (
            (1 - beta) ** 0.5 * (1 - a_prev) / (1 - a)
        ) * x_t
        if self.config.variance_type == "fixed_large":
            return mean, beta
        return mean, (1 - a_prev) / (1 - a) * beta


# Keys of a diffusers scheduler_config.json (DDPMScheduler / DDIMScheduler) that map onto
# ScheduleConfig unchanged, those that must hold one value, and inert or renamed ones.
_REQUIRED_VALUES: dict[str, Any] = {
    "trained_betas": None,
    "thresholding": False,
    "rescale_betas_zero_snr": False,
}
_INERT = {"dynamic_thresholding_ratio", "sample_max_value"}  # used only with thresholding
_RENAMED = {"timesteps": "num_train_timesteps"}  # early diffusers (GaussianDDPMScheduler)


def validation_message(error: ValidationError) -> str:
    """A ValidationError as one line: ``key: message (got value)`` per problem."""
    parts = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "value"
        got = f" (got {item['input']!r})" if item["type"] != "missing" else ""
        parts.append(f"{key}: {item['msg']}{got}")
    return "; ".join(parts)


def schedule_config_from_diffusers(config: dict[str, Any]) -> ScheduleConfig:
    """The ScheduleConfig of a diffusers ``scheduler_config.json`` (DDPM or DDIM scheduler).

    Bookkeeping keys (``_class_name``, ``_diffusers_version``, any key starting with ``_``)
    are ignored, as are the thresholding parameters when thresholding is off; the early key
    ``timesteps`` is read as ``num_train_timesteps``.

    Raises:
        ConfigError: an option this implementation does not support (``trained_betas``,
            ``thresholding``, a learned variance, ``sample`` prediction, an unknown key),
            naming the key.
    """
    values: dict[str, Any] = {}
    for key, value in config.items():
        if key.startswith("_") or key in _INERT:
            continue
        if key in _REQUIRED_VALUES:
            if value != _REQUIRED_VALUES[key]:
                raise ConfigError(
                    f"scheduler config: {key}={value!r} is not supported "
                    f"(only {_REQUIRED_VALUES[key]!r})"
                )
            continue
        name = _RENAMED.get(key, key)
        if name not in ScheduleConfig.model_fields:
            raise ConfigError(
                f"scheduler config: key {key!r} is not supported by the DDPM schedule; "
                f"the supported keys are {', '.join(ScheduleConfig.model_fields)}"
            )
        if name in values and values[name] != value:
            old = next(old for old, new in _RENAMED.items() if new == name)
            raise ConfigError(f"scheduler config: {old!r} and {name!r} disagree")
        values[name] = value
    try:
        return ScheduleConfig(**values)
    except ValidationError as error:
        raise ConfigError(f"scheduler config: {validation_message(error)}") from None

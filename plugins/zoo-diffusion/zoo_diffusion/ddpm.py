"""Denoising diffusion probabilistic models: Ho, Jain & Abbeel 2020, "Denoising Diffusion
Probabilistic Models", arXiv 2006.11239.

The Generator ``ddpm-unet``: the UNet of ``unet.py`` predicting ε (or v, Salimans & Ho 2022,
arXiv 2202.00512) under the noise schedule of ``schedule.py``, sampled by any sampler of
``samplers/``. What differs from the paper: the fast samplers (DDIM, DPM-Solver++), the
v-objective, and an optional class embedding with a null class for classifier-free guidance
(Ho & Salimans 2022, arXiv 2207.12598). Every random draw of sampling comes from
``zoo_core.seeding.Noise`` (the seeding rule): the starting noise at step 0, the noise of
sampler step ``i`` at step ``i + 1``.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zoo_core.errors import ConfigError
from zoo_core.generator import Example, Generator
from zoo_core.seeding import Noise
from zoo_diffusion.samplers import SAMPLERS, sampler_class
from zoo_diffusion.schedule import NoiseSchedule, ScheduleConfig, schedule_config_from_diffusers
from zoo_diffusion.unet import (
    UNet2D,
    UNetConfig,
    convert_diffusers_unet,
    unet_config_from_diffusers,
)


class DDPMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    unet: UNetConfig = Field(description="The noise-prediction network.")
    schedule: ScheduleConfig = Field(
        default_factory=ScheduleConfig, description="Forward process and prediction type."
    )
    num_classes: int | None = Field(
        None, ge=1, description="Classes of a class-conditional model (None: unconditional)."
    )

    @model_validator(mode="after")
    def _class_embedding_fits(self) -> DDPMConfig:
        expected = None if self.num_classes is None else self.num_classes + 1
        if self.unet.num_class_embeds != expected:
            raise ValueError(
                f"unet.num_class_embeds must be num_classes + 1 (the null class): {expected}"
            )
        return self


class DDPMSampleOptions(BaseModel):
    """Keyword arguments of ``DDPM.sample``."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    sampler: str = Field("ddim", description=f"One of {sorted(SAMPLERS)}.")
    steps: int = Field(50, ge=1, description="Network evaluations (sampler steps).")
    eta: float = Field(0.0, ge=0.0, description="DDIM's stochasticity (0: deterministic).")
    guidance_scale: float | None = Field(
        None, description="Classifier-free guidance weight w (conditional models; 1: none)."
    )
    labels: list[int] | int | None = Field(
        None, description="Class of each sample (one int for all); None: unconditional."
    )
    x_T: torch.Tensor | None = Field(
        None, description="Starting noise (n, C, H, W) instead of the seeded draw."
    )
    precision: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="The network's arithmetic: bf16 autocast is faster on CPUs with "
        "bf16 matrix units and on GPUs; the sampler itself stays in float32.",
    )

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, value: str) -> str:
        sampler_class(value)  # raises ConfigError listing the known ones
        return value


class DDPM(Generator):
    """A DDPM: ``sample`` gives images ``(n, C, H, W)`` in [0, 1].

    Options (``sample(n, seed=..., **options)``): ``sampler`` ("ddim", "ddpm",
    "dpm-solver++"), ``steps``, ``eta`` (DDIM), ``guidance_scale`` and ``labels``
    (class-conditional models only), ``x_T`` (fix the starting noise), ``precision``
    ("fp32" or "bf16" autocast of the network).
    ``log_prob`` is the variational bound of Ho et al. (eq. 5) with a discretized Gaussian
    decoder, in nats per image of 8-bit data: a lower bound on the log-likelihood.
    """

    architecture: ClassVar[str] = "ddpm-unet"
    example: ClassVar[Example] = Example(
        config={
            "unet": {
                "sample_size": 8, "in_channels": 1, "out_channels": 1,
                "block_out_channels": [16, 32],
                "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
                "up_block_types": ["AttnUpBlock2D", "UpBlock2D"], "layers_per_block": 1,
                "norm_num_groups": 8, "attention_head_dim": 8,
            },
            "schedule": {"num_train_timesteps": 100, "beta_start": 0.001, "beta_end": 0.05},
        },
        sample_options={"sampler": "ddim", "steps": 4},
        dataset="digits",
    )  # fmt: skip
    Config: ClassVar[type[BaseModel]] = DDPMConfig
    SampleOptions: ClassVar[type[BaseModel]] = DDPMSampleOptions
    capabilities: ClassVar[frozenset[str]] = frozenset({"sample", "log_prob"})
    modality: ClassVar[str] = "image"
    default_batch_size: ClassVar[int] = 64

    def __init__(self, config: DDPMConfig):
        super().__init__(config)
        if config.num_classes is not None:  # an instance built with classes declares it
            self.capabilities = type(self).capabilities | {"conditional"}
        self.unet = UNet2D(config.unet)
        self.schedule = NoiseSchedule(config.schedule)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        u = self.config.unet
        return (u.in_channels, u.sample_size, u.sample_size)

    # ------------------------------------------------------------------ sampling
    def nfe(self, options: DDPMSampleOptions) -> int:
        """UNet evaluations per sample: one per step, two where guidance runs the
        conditional and the unconditional pass."""
        guided = options.labels is not None and options.guidance_scale not in (None, 1.0)
        return options.steps * (2 if guided else 1)

    def check_call(self, n: int, options: DDPMSampleOptions) -> None:
        conditional = self.config.num_classes is not None
        if options.guidance_scale is not None and not conditional:
            raise self.capability_error("conditional", "guidance_scale does not apply")
        if options.labels is not None:
            if not conditional:
                raise self.capability_error("conditional", "labels do not apply")
            labels = [options.labels] * n if isinstance(options.labels, int) else options.labels
            if len(labels) != n:
                raise ConfigError(f"labels has {len(labels)} entries for {n} samples")
            bad = [y for y in labels if not 0 <= y < self.config.num_classes]
            if bad:
                raise ConfigError(
                    f"labels {bad[:5]} out of range: classes are 0..{self.config.num_classes - 1}"
                )
        if options.x_T is not None and tuple(options.x_T.shape) != (n, *self.image_shape):
            raise ConfigError(
                f"x_T has shape {tuple(options.x_T.shape)}, expected {(n, *self.image_shape)}"
            )
        if options.steps > self.config.schedule.num_train_timesteps:
            raise ConfigError(
                f"steps {options.steps} exceeds the {self.config.schedule.num_train_timesteps} "
                f"training timesteps"
            )

    def sample_batch(self, noise: Noise, options: DDPMSampleOptions) -> torch.Tensor:
        dtype = next(self.unet.parameters()).dtype
        if options.x_T is not None:
            x = options.x_T[noise.positions.cpu()].to(self.device, dtype)  # (B, C, H, W)
        else:
            x = noise.randn(*self.image_shape, step=0, dtype=dtype)
        labels = self._labels(noise, options)
        sampler = make_sampler(options.sampler, self.schedule, options.eta)
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if options.precision == "bf16"
            else contextlib.nullcontext()
        )
        for i, t in enumerate(sampler.set_timesteps(options.steps).tolist()):
            with autocast:
                output = self._guided(x, t, labels, options.guidance_scale).float()
            fresh = noise.randn(*self.image_shape, step=i + 1, dtype=dtype) if (
                sampler.stochastic
            ) else None  # fmt: skip
            x = sampler.step(output, t, x, fresh)
        return ((x.float() + 1) / 2).clamp(0, 1)

    def _labels(self, noise: Noise, options: DDPMSampleOptions) -> torch.Tensor | None:
        if self.config.num_classes is None:
            return None
        if options.labels is None:
            return torch.full((len(noise),), self.config.num_classes, device=self.device)
        if isinstance(options.labels, int):
            return torch.full((len(noise),), options.labels, device=self.device)
        return torch.tensor(options.labels, device=self.device)[noise.positions]

    def _guided(self, x, t: int, labels, scale: float | None) -> torch.Tensor:
        """Network output, with classifier-free guidance (eq. 6 of Ho & Salimans 2022):
        (1 + w') ε(x, c) - w' ε(x, ∅) written as ε(x, ∅) + w (ε(x, c) - ε(x, ∅))."""
        timesteps = torch.full((x.shape[0],), t, device=x.device)
        if scale is None or labels is None or scale == 1.0:
            return self.unet(x, timesteps, labels)
        null = torch.full_like(labels, self.config.num_classes)
        both = self.unet(torch.cat([x, x]), torch.cat([timesteps, timesteps]),
                         torch.cat([labels, null]))  # fmt: skip
        cond, uncond = both.chunk(2)
        return uncond + scale * (cond - uncond)

    # ------------------------------------------------------------------ likelihood
    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Variational lower bound on log p(x) in nats, ``(N,)``, for images in [0, 1]
        quantized to 8 bits (Ho et al. eq. 5: L_T + Σ_{t>1} L_{t-1} + L_0, with the
        discretized Gaussian decoder of section 3.3). Costs T network evaluations; the
        x_t of each term are drawn with the seeding rule (seed 0, one index per image)."""
        x0 = (torch.round(x.clamp(0, 1) * 255) / 255) * 2 - 1  # (N, C, H, W) in [-1, 1]
        s = self.schedule
        n = x0.shape[0]
        noise = Noise.for_range(0, 0, n, x0.device)
        if labels is None and self.config.num_classes is not None:
            labels = torch.full((n,), self.config.num_classes, device=x0.device)
        t_last = s.config.num_train_timesteps - 1
        abar = s.alphas_cumprod[t_last].to(x0.dtype)
        prior_mean, prior_var = abar.sqrt() * x0, (1 - abar).expand_as(x0)
        total = _normal_kl(prior_mean, prior_var, torch.zeros_like(x0), torch.ones_like(x0))
        for t in range(s.config.num_train_timesteps):
            eps = noise.randn(*x0.shape[1:], step=t + 1, dtype=x0.dtype)
            x_t = s.add_noise(x0, eps, t)
            output = self.unet(x_t, torch.full((n,), t, device=x0.device), labels)
            x0_hat, _ = s.predict_x0_and_eps(output, x_t, t)
            if s.config.clip_sample:
                x0_hat = x0_hat.clamp(-1, 1)
            mean, var = s.posterior(x0_hat, x_t, t)
            var = torch.as_tensor(var, dtype=x0.dtype, device=x0.device).expand_as(x0)
            if t == 0:
                # The decoder's variance: β̃_1 for fixed_small (as the original code clips
                # the log-variance), β_0 for fixed_large.
                if s.config.variance_type == "fixed_small":
                    a0, a1 = s.alpha_bar(0), s.alpha_bar(1)
                    var = torch.full_like(x0, (1 - a0) / (1 - a1) * (1 - a1 / a0))
                total = total + _discretized_gaussian_nll(x0, mean, var)
            else:
                true_mean, _ = s.posterior(x0, x_t, t)
                # q's variance is the posterior β̃_t whatever the model's variance choice.
                a, a_prev = s.alpha_bar(t), s.alpha_bar(t - 1)
                beta_tilde = (1 - a_prev) / (1 - a) * (1 - a / a_prev)  # eq. 7
                true_var = torch.full_like(x0, beta_tilde)
                total = total + _normal_kl(true_mean, true_var, mean, var)
        return -total.flatten(1).sum(1)


def make_sampler(name: str, schedule: NoiseSchedule, eta: float = 0.0):
    """Sampler ``name`` over ``schedule``; ``eta`` applies to DDIM only."""
    cls = sampler_class(name)
    fields = cls.Options.model_fields
    if eta and "eta" not in fields:
        raise ConfigError(f"eta applies to the ddim sampler, not {name!r}")
    return cls(schedule, cls.make_options(**({"eta": eta} if "eta" in fields else {})))


def _normal_kl(mean1, var1, mean2, var2) -> torch.Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)) per element, in nats."""
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1.0)


def _discretized_gaussian_nll(x0, mean, var) -> torch.Tensor:
    """-log of the probability of the 8-bit bin of x0 under N(mean, var) (Ho et al. eq. 13),
    with the edge bins extended to ±infinity; per element, in nats."""
    std = var.sqrt()
    upper = torch.where(x0 > 0.999, torch.full_like(x0, math.inf), x0 + 1 / 255)
    lower = torch.where(x0 < -0.999, torch.full_like(x0, -math.inf), x0 - 1 / 255)
    normal = torch.distributions.Normal(mean, std)
    prob = normal.cdf(upper) - normal.cdf(lower)
    return -torch.log(prob.clamp_min(1e-12))


def convert_diffusers(files, card) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A diffusers ``UNet2DModel`` repository (config.json, scheduler_config.json,
    diffusion_pytorch_model.safetensors) -> the native config and state dict."""
    unet_config = unet_config_from_diffusers(files.json("config.json"))
    if not files.has("scheduler_config.json"):
        raise ConfigError(
            f"{files.source} has no scheduler_config.json: a diffusers DDPM repo needs it"
        )
    schedule = schedule_config_from_diffusers(files.json("scheduler_config.json"))
    state = convert_diffusers_unet(files.tensors("diffusion_pytorch_model.safetensors"),
                                   unet_config)  # fmt: skip
    config = {
        "unet": unet_config.model_dump(),
        "schedule": schedule.model_dump(),
        "num_classes": None,
    }
    return config, {f"unet.{name}": tensor for name, tensor in state.items()}

"""Training a DDPM: the simple objective of Ho et al. 2020 (arXiv 2006.11239, eq. 14) for ε,
or the v-objective of Salimans & Ho 2022 (arXiv 2202.00512), with uniform timesteps, the
optional min-SNR-γ weighting of Hang et al. 2023 (arXiv 2303.09556), and label dropout for
classifier-free guidance (Ho & Salimans 2022, arXiv 2207.12598)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field

from zoo_core.trainer import Trainer


class DDPMTrainerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_snr_gamma: float | None = Field(
        None, gt=0, description="Min-SNR-γ loss weighting (None: the unweighted objective)."
    )
    label_dropout: float = Field(
        0.1, ge=0, le=1, description="Probability of training a labelled example unconditionally."
    )


class DDPMTrainer(Trainer):
    """``training_step``: noise a batch of images at uniform timesteps, regress the target of
    the schedule's prediction type (ε or v) with mean squared error."""

    architecture: ClassVar[str] = "ddpm-unet"
    Config: ClassVar[type[BaseModel]] = DDPMTrainerConfig

    def training_step(self, batch: Any, step: int, optimizer: str) -> dict[str, Any]:
        images, labels = batch if isinstance(batch, tuple | list) else (batch, None)
        model, schedule = self.model, self.model.schedule
        x0 = images * 2 - 1  # (B, C, H, W) in [-1, 1]
        b = x0.shape[0]
        t = torch.randint(0, schedule.config.num_train_timesteps, (b,), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = schedule.add_noise(x0, noise, t)
        if schedule.config.prediction_type == "epsilon":
            target = noise
        else:
            target = schedule.velocity(x0, noise, t)
        class_labels = self._labels(labels, b, x0.device)
        output = model.unet(x_t, t, class_labels)
        per_example = (output.float() - target.float()).square().flatten(1).mean(1)  # (B,)
        weights = self._weights(t)
        loss = (per_example * weights).mean()
        return {"loss": loss, "mse": per_example.mean().detach()}

    def _labels(self, labels, b: int, device) -> torch.Tensor | None:
        classes = self.model.config.num_classes
        if classes is None:
            return None
        if labels is None:
            return torch.full((b,), classes, device=device)
        drop = torch.rand(b, device=device) < self.config.label_dropout
        return torch.where(drop, torch.full_like(labels, classes), labels)

    def _weights(self, t: torch.Tensor) -> torch.Tensor:
        gamma = self.config.min_snr_gamma
        if gamma is None:
            return torch.ones_like(t, dtype=torch.float32)
        abar = self.model.schedule.alphas_cumprod.to(t.device)[t].float()
        snr = abar / (1 - abar)
        clipped = torch.clamp(snr, max=gamma)
        # ε-objective: min(SNR, γ) / SNR; v-objective: min(SNR, γ) / (SNR + 1) (eq. 13-14).
        if self.model.schedule.config.prediction_type == "epsilon":
            return clipped / snr
        return clipped / (snr + 1)

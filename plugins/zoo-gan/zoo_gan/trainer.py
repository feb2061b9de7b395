"""Training a GAN through the shared loop: two optimizers, ``discriminator`` then
``generator``, each step (or at the cadences of the recipe's ``train.optimizers``).

The discriminator is the trainer's own module (checkpointed with the run, never shipped with
the model): its configuration is the recipe's ``trainer.discriminator``. The loss, the
regularizers (the WGAN-GP gradient penalty, R1 with lazy regularization as in StyleGAN2,
spectral normalization in the discriminator's config), differentiable augmentation and the
diagnostics are options of every architecture's trainer. The EMA generator is the loop's
``train.ema``.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import nn

from zoo_core.errors import ConfigError
from zoo_core.trainer import Trainer
from zoo_gan.augment import POLICIES, diff_augment
from zoo_gan.cgan import CGANDiscriminatorConfig, ProjectionDiscriminator
from zoo_gan.dcgan import DCGANDiscriminator, DCGANDiscriminatorConfig
from zoo_gan.diagnostics import SaturationWatch, summarize
from zoo_gan.losses import (
    PROBABILISTIC,
    Loss,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    r1_penalty,
)
from zoo_gan.mlp_gan import MLPDiscriminator, MLPDiscriminatorConfig
from zoo_gan.stylegan import StyleGANDiscriminator, StyleGANDiscriminatorConfig

log = logging.getLogger(__name__)


class GANTrainerConfig(BaseModel):
    """Options every GAN trainer shares (a recipe's ``trainer:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    loss: Loss = Field("non-saturating", description="The adversarial loss.")
    gp_weight: float = Field(10.0, ge=0, description="λ of the WGAN-GP gradient penalty.")
    r1_gamma: float | None = Field(
        None, gt=0, description="γ of the R1 penalty γ/2 E||∇D(x)||² (None: no R1)."
    )
    r1_every: int = Field(
        1, ge=1, description="Apply R1 at every k-th step, weighted by k (lazy regularization)."
    )
    augment: list[str] = Field(
        default_factory=list,
        description=f"DiffAugment policies for images, applied in order: any of {POLICIES}.",
    )
    saturation_eps: float = Field(
        0.01, gt=0, lt=0.5, description="D(x) > 1 - eps and D(G(z)) < eps counts as saturated."
    )
    saturation_patience: int = Field(
        100, ge=1, description="Saturated steps in a row before a vanishing-gradient warning."
    )
    oscillation_ratio: float = Field(
        0.6, gt=0, le=1, description="Oscillation ratio above which a trendless loss warns."
    )
    mode_check_every: int | None = Field(
        None,
        ge=1,
        description="Score mode coverage every k steps on a Gaussian-mixture dataset "
        "(ring8, grid25); None: never.",
    )
    mode_check_samples: int = Field(2500, ge=1, description="Samples per mode-coverage check.")

    @field_validator("augment")
    @classmethod
    def _known_policies(cls, value: list[str]) -> list[str]:
        unknown = [p for p in value if p not in POLICIES]
        if unknown:
            raise ValueError(f"unknown augmentation {unknown}; choose from {list(POLICIES)}")
        return value

    @model_validator(mode="after")
    def _compatible(self) -> GANTrainerConfig:
        discriminator = getattr(self, "discriminator", None)
        if self.loss == "wgan-gp" and discriminator is not None and discriminator.uses_batch_norm:
            raise ValueError(
                "loss wgan-gp cannot go with batch norm in the discriminator (the gradient "
                "penalty is per sample; Gulrajani et al. 2017, section 4): set "
                "discriminator.norm to 'layer' or 'none'"
            )
        if self.loss == "wgan-gp" and self.gp_weight == 0:
            raise ValueError(
                "loss wgan-gp needs gp_weight > 0 (without it the critic is unbounded)"
            )
        return self


class GANTrainer(Trainer):
    """``training_step`` of every GAN: subclasses name the architecture, the discriminator
    class and the trainer Config (with a ``discriminator`` field of that class's config)."""

    optimizers: ClassVar[tuple[str, ...]] = ("discriminator", "generator")
    Discriminator: ClassVar[type[nn.Module]]

    def __init__(self, model, config: GANTrainerConfig):
        super().__init__(model, config)
        if config.augment and model.modality != "image":
            raise ConfigError(
                f"trainer.augment applies to images; {model.architecture} makes {model.modality}"
            )
        self.discriminator = self.Discriminator(config.discriminator, model.config)
        self.saturation = SaturationWatch(
            config.loss, config.saturation_eps, config.saturation_patience
        )
        self.mixture: tuple[torch.Tensor, float] | None = None  # (centers, std) of the data

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model, "discriminator": self.discriminator}

    def parameters(self, optimizer: str) -> list[nn.Parameter]:
        module = self.discriminator if optimizer == "discriminator" else self.model
        return list(module.parameters())

    def dataset(self, data: Any) -> Any:
        params = getattr(data, "params", {}) or {}
        if self.config.mode_check_every and {"centers", "std"} <= set(params):
            self.mixture = (torch.tensor(params["centers"], dtype=torch.float64), params["std"])
        elif self.config.mode_check_every:
            raise ConfigError(
                "trainer.mode_check_every needs a Gaussian-mixture dataset (ring8, grid25); "
                "set it to null for this dataset"
            )
        return data

    # ----------------------------------------------------------------- the step
    def training_step(self, batch: Any, step: int, optimizer: str) -> dict[str, Any]:
        x, labels = batch if isinstance(batch, tuple | list) else (batch, None)
        if self.model.modality == "image":
            x = x * 2 - 1  # (B, C, H, W) in [-1, 1]
        labels = self._labels(labels, x.device)
        z = torch.randn(x.shape[0], self.model.z_dim, device=x.device)
        if optimizer == "discriminator":
            return self._discriminator_step(x, labels, z, step)
        return self._generator_step(labels, z, step)

    def _labels(self, labels, device) -> torch.Tensor | None:
        """A conditional model is trained on the batch's real labels (fakes get them too)."""
        if self.model.num_classes is None:
            return None
        if labels is None:
            raise ConfigError(
                f"{self.model.architecture} is class-conditional: train it on a labelled dataset"
            )
        return labels.to(device)

    def _score(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.config.augment:
            x = diff_augment(x, tuple(self.config.augment))
        return self.discriminator(x, labels)

    def _discriminator_step(self, x, labels, z, step: int) -> dict[str, Any]:
        cfg = self.config
        with torch.no_grad():
            fake = self.model.synthesize(z, labels)
        # A function of the step, so that a resumed run regularizes at the same steps.
        r1_due = cfg.r1_gamma is not None and step % cfg.r1_every == 0
        real = x.detach().requires_grad_(r1_due)
        real_out, fake_out = self._score(real, labels), self._score(fake, labels)
        loss = discriminator_loss(cfg.loss, real_out, fake_out)
        metrics: dict[str, Any] = {"adversarial": loss.detach()}
        if cfg.loss == "wgan-gp":
            gp = gradient_penalty(lambda h: self._score(h, labels), x, fake)
            loss = loss + cfg.gp_weight * gp
            metrics["gradient_penalty"] = gp.detach()
        if r1_due:
            r1 = r1_penalty(real_out, real)
            loss = loss + cfg.r1_gamma / 2 * r1 * cfg.r1_every
            metrics["r1"] = r1.detach()
        d_real, d_fake = self._readout(real_out), self._readout(fake_out)
        self.saturation.observe(step, d_real, d_fake)
        return {"loss": loss, **metrics, "d_real": d_real, "d_fake": d_fake}

    def _generator_step(self, labels, z, step: int) -> dict[str, Any]:
        fake = self.model.synthesize(z, labels)
        fake_out = self._score(fake, labels)
        metrics: dict[str, Any] = {
            "loss": generator_loss(self.config.loss, fake_out),
            "d_fake": self._readout(fake_out),
        }
        every = self.config.mode_check_every
        if self.mixture is not None and every and (step + 1) % every == 0:
            metrics.update(self._mode_check(step))
        return metrics

    def _readout(self, out: torch.Tensor) -> float:
        """D's mean verdict: a probability for the probabilistic losses, else the raw score."""
        out = out.detach().float()
        return float(torch.sigmoid(out).mean() if self.config.loss in PROBABILISTIC else out.mean())

    @torch.no_grad()
    def _mode_check(self, step: int) -> dict[str, float]:
        from zoo_core.evaluation.metrics import mixture_modes

        centers, std = self.mixture
        points = self.model.sample(self.config.mode_check_samples, seed=0)  # in eval mode
        scores = mixture_modes(points.cpu(), centers, std)
        log.info(
            "step %d: %d of %d modes, %.1f%% high quality, reverse KL %.3f",
            step + 1, scores["modes"], len(centers), 100 * scores["high_quality"],
            scores["reverse_kl"],
        )  # fmt: skip
        return {**scores, "modes_total": len(centers)}

    # ----------------------------------------------------------------- the summary
    def summary(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The diagnostics of the run (see ``zoo_gan.diagnostics``), for its model card."""
        return summarize(
            records,
            loss=self.config.loss,
            saturation=self.saturation,
            oscillation_ratio=self.config.oscillation_ratio,
        )


# --------------------------------------------------------------------- per architecture
def _config(name: str, discriminator: type[BaseModel]) -> type[GANTrainerConfig]:
    """The trainer Config of one architecture: the shared options and its discriminator's."""
    from pydantic import create_model

    return create_model(
        name,
        __base__=GANTrainerConfig,
        discriminator=(
            discriminator,
            Field(default_factory=discriminator, description="The discriminator."),
        ),
    )


class MLPGANTrainer(GANTrainer):
    """Trains ``mlp-gan`` (PacGAN's 2-D experiments) against the packed maxout discriminator."""

    architecture: ClassVar[str] = "mlp-gan"
    Discriminator: ClassVar[type[nn.Module]] = MLPDiscriminator
    Config: ClassVar[type[BaseModel]] = _config("MLPGANTrainerConfig", MLPDiscriminatorConfig)


class DCGANTrainer(GANTrainer):
    """Trains ``dcgan`` against the DCGAN discriminator."""

    architecture: ClassVar[str] = "dcgan"
    Discriminator: ClassVar[type[nn.Module]] = DCGANDiscriminator
    Config: ClassVar[type[BaseModel]] = _config("DCGANTrainerConfig", DCGANDiscriminatorConfig)


class CGANTrainer(GANTrainer):
    """Trains ``cgan`` against the projection discriminator, on the data's labels."""

    architecture: ClassVar[str] = "cgan"
    Discriminator: ClassVar[type[nn.Module]] = ProjectionDiscriminator
    Config: ClassVar[type[BaseModel]] = _config("CGANTrainerConfig", CGANDiscriminatorConfig)


class StyleGANTrainer(GANTrainer):
    """Trains ``stylegan`` against the StyleGAN2 residual discriminator (projection when
    conditional). The paper's regularizers are the shared options: R1 with lazy
    regularization (``r1_gamma``, ``r1_every: 16``); style mixing is the generator's own
    (``mixing_prob``). Path length regularization is not implemented."""

    architecture: ClassVar[str] = "stylegan"
    Discriminator: ClassVar[type[nn.Module]] = StyleGANDiscriminator
    Config: ClassVar[type[BaseModel]] = _config(
        "StyleGANTrainerConfig", StyleGANDiscriminatorConfig
    )

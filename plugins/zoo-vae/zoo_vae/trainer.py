"""Training the VAE family through the shared loop.

- ``conv-vae``: maximise the ELBO (Kingma & Welling 2013, arXiv 1312.6114, eq. 10) with the
  KL term weighted by the config's β (Higgins et al. 2017), optionally warmed up from 0
  (Bowman et al. 2016, arXiv 1511.06349).
- ``vq-vae``: the VQ-VAE objective (van den Oord et al. 2017, arXiv 1711.00937, eq. 3) with
  the codebook updated by exponential moving averages (appendix A.1), and its code prior
  trained alongside on the current codes (its own optimizer).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field

from zoo_core.errors import ConfigError
from zoo_core.seeding import Noise
from zoo_core.trainer import Trainer


class VAETrainerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kl_warmup_steps: int = Field(
        0, ge=0, description="Steps over which the KL weight rises linearly from 0 to β."
    )
    classes: tuple[int, ...] | None = Field(
        None, description="Train on the examples of these classes only (one-class models)."
    )


class _ClassFilter(Trainer):
    def dataset(self, data: Any) -> Any:
        classes = self.config.classes
        if classes is None:
            return data
        labels = getattr(data, "y", None)
        if labels is None:
            raise ConfigError(
                f"trainer.classes needs a labelled dataset; {getattr(data, 'name', 'this one')} "
                f"has no labels"
            )
        keep = torch.isin(labels, torch.tensor(classes, dtype=labels.dtype)).nonzero().flatten()
        if keep.numel() == 0:
            raise ConfigError(f"trainer.classes {list(classes)}: no training example has them")
        return torch.utils.data.Subset(data, keep.tolist())


def _images(batch: Any) -> torch.Tensor:
    return batch[0] if isinstance(batch, tuple | list) else batch


class ConvVAETrainer(_ClassFilter):
    """``training_step``: one reparameterized posterior draw per image; the loss is the
    negative β-weighted ELBO in nats per image (logged with its terms and in bits/dim)."""

    architecture: ClassVar[str] = "conv-vae"
    Config: ClassVar[type[BaseModel]] = VAETrainerConfig

    def training_step(self, batch: Any, step: int, optimizer: str) -> dict[str, Any]:
        x = _images(batch)
        model = self.model
        # The loop seeds torch's global generator and checkpoints it: a resume is exact.
        seed = int(torch.randint(0, 2**62, (1,)))
        recon, kl, _ = model.elbo_terms(x, Noise.for_range(seed, 0, x.shape[0], x.device))
        weight = model.config.beta * self._warmup(step)
        loss = -(recon - weight * kl).mean()
        elbo = (recon - kl).detach()
        dims = math.prod(x.shape[1:])
        return {
            "loss": loss,
            "elbo": elbo.mean(),
            "reconstruction": recon.detach().mean(),
            "kl": kl.detach().mean(),
            "kl_weight": weight,
            "bits_per_dim": -elbo.mean() / (dims * math.log(2)),
        }

    def _warmup(self, step: int) -> float:
        steps = self.config.kl_warmup_steps
        return 1.0 if steps == 0 else min(1.0, (step + 1) / steps)


class VQVAETrainerConfig(VAETrainerConfig):
    kl_warmup_steps: int = Field(0, ge=0, le=0, description="Not used by VQ-VAE (no KL term).")
    restart_every: int | None = Field(
        200,
        ge=1,
        description="Steps between restarts of dead codes (EMA count below restart_below) at "
        "random encoder outputs of the batch; null: never.",
    )
    restart_below: float = Field(0.03, ge=0, description="EMA count under which a code is dead.")
    prior_batch: int | None = Field(
        None, ge=1, description="Examples of each batch the prior trains on (null: all)."
    )


class VQVAETrainer(_ClassFilter):
    """``training_step``: for ``model``, the negative log-likelihood of the decoder on z_q
    (straight-through gradients to the encoder) per pixel plus β times the commitment loss
    per latent element, the codebook moved by EMA; for ``prior``, the cross-entropy of the
    code prior on the current codes, in nats per code."""

    architecture: ClassVar[str] = "vq-vae"
    Config: ClassVar[type[BaseModel]] = VQVAETrainerConfig
    optimizers: ClassVar[tuple[str, ...]] = ("model", "prior")

    def parameters(self, optimizer: str) -> list[torch.nn.Parameter]:
        prior = list(self.model.prior.parameters())
        if optimizer == "prior":
            return prior
        ids = {id(p) for p in prior}
        return [p for p in self.model.parameters() if id(p) not in ids]

    def training_step(self, batch: Any, step: int, optimizer: str) -> dict[str, Any]:
        from zoo_vae.vq_vae import ema_update

        x = _images(batch)
        model = self.model
        if optimizer == "prior":
            x = x[: self.config.prior_batch]
            with torch.no_grad():
                codes, _ = model.quantize(model.encoder(x * 2 - 1))
            nll = -model.prior.log_prob(codes.flatten(1)) / codes[0].numel()
            return {"loss": nll.mean(), "bits_per_code": nll.mean().detach() / math.log(2)}
        z_e = model.encoder(x * 2 - 1)
        codes, z_q = model.quantize(z_e)
        commitment = (z_e - z_q.detach()).square().mean()
        z_st = z_e + (z_q - z_e).detach()  # straight-through estimator
        log_px = model.likelihood.log_prob(model.decoder(z_st), x)  # (N,)
        dims = math.prod(x.shape[1:])
        loss = -log_px.mean() / dims + model.config.commitment * commitment
        with torch.no_grad():
            perplexity = ema_update(model, z_e, codes)
            every = self.config.restart_every
            restarted = 0
            if every is not None and (step + 1) % every == 0:
                restarted = self._restart(z_e)
        return {
            "loss": loss,
            "reconstruction_bits_per_dim": -log_px.detach().mean() / (dims * math.log(2)),
            "commitment": commitment.detach(),
            "perplexity": perplexity,
            "restarted": restarted,
        }

    def _restart(self, z_e: torch.Tensor) -> int:
        """Move dead codes onto random encoder outputs of the batch (their EMA statistics
        reset to one use), a common remedy for codebook collapse."""
        model = self.model
        dead = (model.ema_count < self.config.restart_below).nonzero().flatten()
        if dead.numel() == 0:
            return 0
        flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, model.config.code_dim).float()
        picks = torch.randint(0, flat.shape[0], (dead.numel(),), device=flat.device)
        model.codebook[dead] = flat[picks]
        model.ema_sum[dead] = flat[picks]
        model.ema_count[dead] = 1.0
        return int(dead.numel())

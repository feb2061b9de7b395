"""Maximum-likelihood training of the Gaussian mixture: the core's own trainable model, so
that the shared loop is exercised with no family plugin installed."""

from __future__ import annotations

from typing import Any, ClassVar

from zoo_core.trainer import Trainer


class GaussianMixtureTrainer(Trainer):
    """Minimises the exact negative log-likelihood of a batch of points, in nats."""

    architecture: ClassVar[str] = "gmm"

    def training_step(self, batch: Any, step: int, optimizer: str) -> dict[str, Any]:
        points = batch[0] if isinstance(batch, tuple | list) else batch  # (B, D)
        nll = -self.model.log_prob(points).mean()
        return {"loss": nll}

"""The adversarial losses and the discriminator's regularizers.

Each loss is written on the discriminator's raw outputs (logits or critic values):

- ``minimax``: the original game of Goodfellow et al. 2014 (arXiv 1406.2661, eq. 1); the
  generator minimises ``log(1 - D(G(z)))``, whose gradient vanishes once D rejects the
  fakes confidently (kept to show that trouble, not to train with);
- ``non-saturating``: the same discriminator, the generator maximising ``log D(G(z))``
  instead (ibid., section 3);
- ``hinge``: Lim & Ye 2017 (arXiv 1705.02894), as in SN-GAN and BigGAN;
- ``wgan-gp``: the Wasserstein critic with the gradient penalty of Gulrajani et al. 2017
  (arXiv 1704.00028, eq. 3).

The R1 penalty is Mescheder et al. 2018 (arXiv 1801.04406, eq. 9).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

Loss = Literal["minimax", "non-saturating", "hinge", "wgan-gp"]
LOSSES: tuple[str, ...] = ("minimax", "non-saturating", "hinge", "wgan-gp")
PROBABILISTIC = frozenset({"minimax", "non-saturating"})  # D's output is a logit of P(real)


def discriminator_loss(kind: Loss, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's (critic's) loss on its outputs for real and generated data."""
    real, fake = real.float(), fake.float()
    if kind in PROBABILISTIC:
        # -log D(x) - log(1 - D(G(z))), with D = sigmoid(logit)
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "wgan-gp":
        return fake.mean() - real.mean()
    raise ValueError(f"unknown loss {kind!r}; one of {LOSSES}")


def generator_loss(kind: Loss, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss on the discriminator's outputs for generated data."""
    fake = fake.float()
    if kind == "minimax":
        return -F.softplus(fake).mean()  # log(1 - D(G(z))) = -softplus(logit)
    if kind == "non-saturating":
        return F.softplus(-fake).mean()  # -log D(G(z))
    if kind in ("hinge", "wgan-gp"):
        return -fake.mean()
    raise ValueError(f"unknown loss {kind!r}; one of {LOSSES}")


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor
) -> torch.Tensor:
    """``E[(||grad D(x_hat)|| - 1)^2]`` at random points ``x_hat`` between real and fake
    samples (one uniform weight per sample, from torch's global generator).

    The norm is taken per output of ``critic``: a packed critic (PacGAN) scores groups of
    samples, and its gradient with respect to a whole group is one vector.
    """
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (real.detach() + eps * (fake.detach() - real.detach())).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
    norms = grad.reshape(out.shape[0], -1).float().norm(dim=1)  # (outputs,)
    return (norms - 1).square().mean()


def r1_penalty(outputs: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """``E ||grad_x D(x)||^2`` on real data (``real`` must require grad and ``outputs`` be
    computed from it); the caller weighs it by ``gamma / 2``."""
    (grad,) = torch.autograd.grad(outputs.float().sum(), real, create_graph=True)
    return grad.float().square().sum() / outputs.shape[0]

"""Decoder likelihoods p(x | z) of the VAE family, over images in [0, 1].

- ``bernoulli``: one logit per pixel; a likelihood of binary images (Kingma & Welling 2013,
  arXiv 1312.6114, appendix C.1). On grey images its cross-entropy trains a decoder but is
  not a likelihood (Loaiza-Ganem & Cunningham 2019, arXiv 1907.06845), so ``log_prob``
  refuses them.
- ``gaussian``: a mean per pixel and one learned scale per channel (appendix C.2); a density
  of continuous values, in nats per unit of [0, 1]^D.
- ``logistic``: the discretized logistic of PixelCNN++ (Salimans et al. 2017, arXiv
  1701.05517, eq. 2) over the 256 levels of 8-bit images, with a mean and a scale per
  pixel: a probability, so its bits/dim compare with those of PixelCNN.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from zoo_core.errors import ConfigError
from zoo_core.seeding import Noise

Kind = Literal["bernoulli", "gaussian", "logistic"]
LEVELS = 256  # 8-bit images
MIN_LOG_SCALE = -7.0  # PixelCNN++'s floor on a logistic's log-scale


class Likelihood(nn.Module):
    """p(x | z) from the decoder's output ``params`` ``(N, out_channels, H, W)``.

    Args:
        kind: ``bernoulli``, ``gaussian`` or ``logistic``.
        channels: image channels C.
    """

    def __init__(self, kind: Kind, channels: int):
        super().__init__()
        self.kind, self.channels = kind, channels
        if kind == "gaussian":
            # log σ per channel, learned (Kingma & Welling's Gaussian MLP decoder learns σ).
            self.log_scale = nn.Parameter(torch.full((channels,), math.log(0.1)))

    @property
    def out_channels(self) -> int:
        """Decoder output channels: a logit or mean per channel, and a log-scale for
        ``logistic``."""
        return 2 * self.channels if self.kind == "logistic" else self.channels

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z) of each example in nats, ``(N,)``; ``params`` may have a leading
        sample axis that broadcasts against ``x`` (``(K, N, ...)`` against ``(N, ...)``)."""
        return self.log_prob_pixels(params, x).flatten(-3).sum(-1)

    def log_prob_pixels(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x_j | z) of every pixel j (pixels are independent given z), the shape of
        ``params`` with ``C`` channels."""
        params, x = params.float(), x.float()
        if self.kind == "bernoulli":
            x = x.expand_as(params)
            out = -F.binary_cross_entropy_with_logits(params, x, reduction="none")
        elif self.kind == "gaussian":
            log_scale = self.log_scale.float().clamp(min=MIN_LOG_SCALE)[:, None, None]
            out = (
                -0.5 * ((x - params) * torch.exp(-log_scale)).square()
                - log_scale
                - 0.5 * math.log(2 * math.pi)
            )
        else:
            mean, log_scale = self._logistic(params)
            out = discretized_logistic_log_prob(x, mean, log_scale)
        return out

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The decoder's image: E[x | z] for bernoulli and gaussian, the logistic's location
        for logistic (its mode up to the clipping at the ends), in [0, 1]."""
        if self.kind == "bernoulli":
            return torch.sigmoid(params.float())
        if self.kind == "gaussian":
            return params.float().clamp(0, 1)
        mean, _ = self._logistic(params)
        return ((mean + 1) / 2).clamp(0, 1)

    def sample(self, params: torch.Tensor, noise: Noise, *, stream: int) -> torch.Tensor:
        """A draw of x from p(x | z), every random number from ``noise`` (``stream``)."""
        shape = (self.channels, *params.shape[-2:])
        if self.kind == "gaussian":
            eps = noise.randn(*shape, stream=stream).to(params.device)
            scale = torch.exp(self.log_scale.float().clamp(min=MIN_LOG_SCALE))[:, None, None]
            return (params.float() + scale * eps).clamp(0, 1)
        u = noise.rand(*shape, stream=stream).to(params.device)
        if self.kind == "bernoulli":
            return (u < torch.sigmoid(params.float())).float()
        mean, log_scale = self._logistic(params)
        x = mean + torch.exp(log_scale) * (torch.log(u) - torch.log1p(-u))  # logistic draw
        levels = torch.round((x.clamp(-1, 1) + 1) / 2 * (LEVELS - 1))
        return levels / (LEVELS - 1)

    def _logistic(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_scale = params.float().split(self.channels, dim=-3)
        return mean, log_scale.clamp(min=MIN_LOG_SCALE)

    def check_data(self, x: torch.Tensor) -> None:
        """Refuse data on which this likelihood is not a likelihood (grey images for
        bernoulli)."""
        if self.kind == "bernoulli" and not bool(((x == 0) | (x == 1)).all()):
            raise ConfigError(
                "a Bernoulli decoder's likelihood is defined on binary images only; binarize "
                "x (e.g. (x > 0.5).float()) or use a model with the logistic decoder"
            )


def discretized_logistic_log_prob(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor
) -> torch.Tensor:
    """log P(x) per element under a logistic of ``mean`` and ``log_scale`` (in [-1, 1] units)
    discretized into 256 bins of x in [0, 1]; the end bins take the tails (PixelCNN++ eq. 2).

    Computed stably: the log of a CDF difference via softplus where the bin is in a tail,
    and the density times the bin width where the difference underflows.
    """
    x = x * 2 - 1  # bin centres in [-1, 1]
    half = 1.0 / (LEVELS - 1)
    inv = torch.exp(-log_scale)
    centred = x - mean
    plus, minus = inv * (centred + half), inv * (centred - half)
    cdf_delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    log_cdf_plus = plus - F.softplus(plus)  # log σ(plus): the lowest bin
    log_one_minus_cdf_minus = -F.softplus(minus)  # log(1 - σ(minus)): the highest bin
    mid = inv * centred
    log_pdf_mid = mid - log_scale - 2 * F.softplus(mid)  # log density at the bin centre
    inner = torch.where(
        cdf_delta > 1e-5,
        torch.log(cdf_delta.clamp(min=1e-12)),
        log_pdf_mid + math.log(2 * half),  # density × bin width where the difference underflows
    )
    return torch.where(
        x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_minus, inner)
    )

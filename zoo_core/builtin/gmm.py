"""A Gaussian mixture with diagonal covariances, as an exact Generator.

The core's built-in model, so that every part of the zoo (registry, weights, sampling,
likelihoods, CLI) works with no family plugin installed. ``gmm-ring8`` holds the 2-D ring of
eight Gaussians of the mode-collapse literature with the parameters of PacGAN (Lin et al.
2018, "PacGAN: The power of two samples in generative adversarial networks", arXiv
1712.04086, section 5.1): means ``(cos(2*pi*i/8), sin(2*pi*i/8))``, variance 1e-4 per
dimension, equal weights. Sampling and ``log_prob`` are exact.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from zoo_core.generator import Example, Generator, NoSampleOptions
from zoo_core.seeding import Noise


class GaussianMixtureConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    components: int = Field(ge=1, le=4096, description="Number of mixture components K.")
    dim: int = Field(ge=1, le=4096, description="Dimension D of each point.")


class GaussianMixture(Generator):
    """``p(x) = sum_k pi_k N(x; mu_k, diag(sigma_k^2))`` over points ``(N, D)``.

    Parameters (as in ``state_dict()``): ``logits`` ``(K,)`` (``pi = softmax(logits)``),
    ``means`` ``(K, D)``, ``log_scales`` ``(K, D)`` (``sigma = exp(log_scales)``).
    ``sample`` takes no family options.
    """

    architecture: ClassVar[str] = "gmm"
    example: ClassVar[Example] = Example(config={"components": 3, "dim": 2}, dataset="ring8")
    Config: ClassVar[type[BaseModel]] = GaussianMixtureConfig
    SampleOptions: ClassVar[type[BaseModel]] = NoSampleOptions
    capabilities: ClassVar[frozenset[str]] = frozenset({"sample", "log_prob"})
    modality: ClassVar[str] = "points"
    default_batch_size: ClassVar[int] = 65536

    def __init__(self, config: GaussianMixtureConfig):
        super().__init__(config)
        k, d = config.components, config.dim
        self.logits = nn.Parameter(torch.zeros(k))
        self.means = nn.Parameter(torch.randn(k, d))  # distinct, so training can separate them
        self.log_scales = nn.Parameter(torch.zeros(k, d))

    def sample_batch(self, noise: Noise, options: BaseModel) -> torch.Tensor:
        probs = torch.softmax(self.logits, dim=0).expand(len(noise), -1)  # (B, K)
        component = noise.categorical(probs, stream=0)  # (B,)
        eps = noise.randn(self.config.dim, stream=1, dtype=self.means.dtype)  # (B, D)
        return self.means[component] + self.log_scales[component].exp() * eps

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density in nats of each point ``x`` ``(N, D)``; returns ``(N,)``."""
        if x.ndim != 2 or x.shape[1] != self.config.dim:
            raise ValueError(
                f"expected points of shape (N, {self.config.dim}), got {tuple(x.shape)}"
            )
        x = x.to(self.means.dtype)[:, None, :]  # (N, 1, D)
        z = (x - self.means) / self.log_scales.exp()  # (N, K, D)
        log_normal = -0.5 * z.square() - self.log_scales - 0.5 * math.log(2 * math.pi)
        log_weights = torch.log_softmax(self.logits, dim=0)  # (K,)
        return torch.logsumexp(log_weights + log_normal.sum(-1), dim=1)

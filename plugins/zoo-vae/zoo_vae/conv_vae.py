"""The variational autoencoder of Kingma & Welling 2013 (arXiv 1312.6114), convolutional, and
β-VAE (Higgins et al. 2017, ICLR, "β-VAE: learning basic visual concepts with a constrained
variational framework") through ``beta``.

A Gaussian posterior q(z | x) = N(μ(x), diag σ²(x)), a standard normal prior, and a decoder
likelihood p(x | z) (``zoo_vae.likelihood``: Bernoulli, Gaussian or the discretized logistic).
``network: mlp`` gives the paper's fully connected encoder and decoder (with no hidden
layer, a linear-Gaussian model whose exact likelihood has a closed form, which the tests use).

Differences from the paper: the convolutional networks (two stride-2 convolutions each way,
as in common practice since), and the discretized-logistic decoder of PixelCNN++ for
8-bit images, so that bits/dim compare with the autoregressive models'.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from zoo_core.errors import ConfigError
from zoo_core.generator import Example
from zoo_core.seeding import Noise
from zoo_vae.base import ImageVAE, VAESampleOptions, _eval, _mean_fill
from zoo_vae.likelihood import Likelihood

LOG_2PI = math.log(2 * math.pi)
POSTERIOR_STREAM = 7  # the Noise stream of posterior draws in log_prob / elbo
PIXEL_STREAM = 1  # the Noise stream of p(x | z) draws in sample


class ConvVAEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: int = Field(28, ge=4, le=256, description="Side of the square images.")
    channels: int = Field(1, ge=1, le=4, description="Image channels.")
    latent_dim: int = Field(16, ge=1, le=4096, description="Dimensions of z.")
    network: Literal["conv", "mlp"] = Field(
        "conv", description="Convolutional, or the paper's fully connected networks."
    )
    width: int = Field(32, ge=1, le=1024, description="conv: channels of the first convolution.")
    hidden: tuple[int, ...] = Field(
        (512,), description="Hidden layer sizes of each network (mlp), or after the convolutions."
    )
    likelihood: Literal["bernoulli", "gaussian", "logistic"] = Field(
        "logistic", description="The decoder's p(x | z)."
    )
    beta: float = Field(
        1.0, gt=0, le=1000, description="Weight of the KL term in training (β-VAE; 1: the ELBO)."
    )

    @model_validator(mode="after")
    def _sizes(self):
        if self.network == "conv" and self.image_size % 4:
            raise ValueError(
                f"image_size {self.image_size} must be a multiple of 4 for the conv network "
                f"(two stride-2 convolutions)"
            )
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden sizes must be positive, got {self.hidden}")
        return self


class ConvVAE(ImageVAE):
    """A VAE over images (``(N, C, H, W)`` in [0, 1]).

    ``log_prob`` is the importance-weighted bound of Burda et al. 2015 (arXiv 1509.00519) with
    ``k`` posterior draws: a lower bound on log p(x) that tightens as ``k`` grows (k = 1: the
    ELBO). ``anomaly_score`` is the negative ELBO.
    """

    architecture: ClassVar[str] = "conv-vae"
    example: ClassVar[Example] = Example(
        config={"image_size": 8, "latent_dim": 4, "width": 4, "hidden": [16]},
        sample_options={},
        dataset="digits",
    )
    Config: ClassVar[type[BaseModel]] = ConvVAEConfig
    SampleOptions: ClassVar[type[BaseModel]] = VAESampleOptions
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"sample", "log_prob", "encode", "decode", "inpaint", "interpolate"}
    )
    methods: ClassVar[tuple[str, ...]] = ("optimize", "iterative")

    def __init__(self, config: ConvVAEConfig):
        super().__init__(config)
        c = config
        self.likelihood = Likelihood(c.likelihood, c.channels)
        dims = c.channels * c.image_size**2
        if c.network == "conv":
            s, w = c.image_size // 4, c.width
            self.features = nn.Sequential(
                nn.Conv2d(c.channels, w, 4, 2, 1), nn.SiLU(),
                nn.Conv2d(w, 2 * w, 4, 2, 1), nn.SiLU(),
                nn.Flatten(),
            )  # fmt: skip
            feature_dim, self._unflatten = 2 * w * s * s, (2 * w, s, s)
            self.synthesis = nn.Sequential(
                nn.SiLU(),
                nn.Unflatten(1, self._unflatten),
                nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.SiLU(),
                nn.ConvTranspose2d(w, self.likelihood.out_channels, 4, 2, 1),
            )  # fmt: skip
        else:
            self.features = nn.Flatten()
            feature_dim = dims
            self.synthesis = nn.Unflatten(
                1, (self.likelihood.out_channels, c.image_size, c.image_size)
            )
        self.encoder_mlp = _mlp(feature_dim, c.hidden, 2 * c.latent_dim)
        out_dim = feature_dim if c.network == "conv" else self.likelihood.out_channels * dims
        self.decoder_mlp = _mlp(c.latent_dim, c.hidden[::-1], out_dim)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.latent_dim,)

    # ----------------------------------------------------------------- the two networks
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x): mean and log-variance, ``(N, latent_dim)`` each."""
        h = self.encoder_mlp(self.features(x * 2 - 1))
        mean, logvar = h.chunk(2, dim=1)
        return mean, logvar.clamp(-30, 20)

    def decoder_params(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.decoder_mlp(z))

    # ----------------------------------------------------------------- bounds
    def elbo_terms(
        self, x: torch.Tensor, noise: Noise
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One posterior draw per example (reparameterized): ``(log p(x | z), KL(q || p),
        params)``; the KL in closed form (Kingma & Welling, appendix B)."""
        mean, logvar = self.posterior(x)
        eps = noise.randn(self.config.latent_dim, stream=POSTERIOR_STREAM).to(x.device)
        z = mean + torch.exp(0.5 * logvar) * eps
        params = self.decoder_params(z)
        kl = 0.5 * (mean.square() + logvar.exp() - 1 - logvar).sum(1)
        return self.likelihood.log_prob(params, x), kl, params

    def elbo(self, x: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
        """log p(x | z) − KL(q(z | x) || p(z)) with one seeded draw of z per example, in nats,
        ``(N,)`` (β = 1 whatever the training's β: this is the bound)."""
        x = self.check_images(x)
        self.likelihood.check_data(x)
        noise = Noise.for_range(seed, 0, x.shape[0], x.device)
        recon, kl, _ = self.elbo_terms(x, noise)
        return recon - kl

    @torch.no_grad()
    def log_prob(
        self, x: torch.Tensor, *, k: int = 100, seed: int = 0, batch_size: int = 4096
    ) -> torch.Tensor:
        """The importance-weighted bound (Burda et al. 2015, eq. 8) in nats, ``(N,)``:

            log (1/k) Σ_i p(x, z_i) / q(z_i | x),   z_i ~ q(z | x),

        a lower bound on log p(x) whose expectation rises with ``k`` towards it. Draws come
        from ``Noise(seed, example index)``, so an example's bound depends on its position in
        ``x``, the seed and ``k`` only.

        Args:
            k: posterior draws per example (at least 1; 1 is a one-draw ELBO estimate).
            seed: seed of the draws.
            batch_size: decoder passes at once (memory, not the result).

        Raises:
            ConfigError: ``k`` < 1; images of the wrong shape or range; grey images under a
                Bernoulli decoder.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(
                f"log_prob(): k must be a positive integer (posterior draws), got {k!r}"
            )
        x = self.check_images(x)
        self.likelihood.check_data(x)
        n, d = x.shape[0], self.config.latent_dim
        with _eval(self):
            mean, logvar = self.posterior(x)
            std = torch.exp(0.5 * logvar)
            noise = Noise.for_range(seed, 0, n, x.device)
            eps = noise.randn(k, d, stream=POSTERIOR_STREAM).to(x.device)  # (N, k, D)
            chunk = max(1, batch_size // max(n, 1))
            weights = []
            for lo in range(0, k, chunk):
                e = eps[:, lo : lo + chunk].transpose(0, 1)  # (c, N, D)
                z = mean + std * e
                params = self.decoder_params(z.reshape(-1, d)).unflatten(0, z.shape[:2])
                log_px = self.likelihood.log_prob(params, x)  # (c, N)
                log_pz = -0.5 * (z.square() + LOG_2PI).sum(-1)
                log_qz = -0.5 * (e.square() + LOG_2PI + logvar).sum(-1)
                weights.append(log_px + log_pz - log_qz)
            log_w = torch.cat(weights).double()  # (k, N)
            return (torch.logsumexp(log_w, 0) - math.log(k)).float()

    # ----------------------------------------------------------------- capabilities
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean μ(x), ``(N, latent_dim)`` (``posterior`` gives the variance)."""
        x = self.check_images(x)
        with _eval(self):
            return self.posterior(x)[0]

    def sample_batch(self, noise: Noise, options: VAESampleOptions) -> torch.Tensor:
        z = noise.randn(self.config.latent_dim).to(self.device) * options.temperature
        params = self.decoder_params(z)
        if options.pixels == "mean":
            return self.likelihood.mean(params)
        return self.likelihood.sample(params, noise, stream=PIXEL_STREAM)

    def _inpaint(self, x, observed, method, steps) -> torch.Tensor:
        """``optimize``: the MAP latent of the observed pixels, argmax_z log p(x_obs | z) +
        log p(z), by Adam from the posterior mean of the mean-filled image; the missing pixels
        are its decoder's."""
        with _eval(self), torch.enable_grad():
            z = self.posterior(_mean_fill(x, observed))[0].detach().requires_grad_(True)
            optimizer = torch.optim.Adam([z], lr=0.05)
            weight = observed.float()
            for _ in range(steps):
                optimizer.zero_grad()
                params = self.decoder_params(z)
                log_px = self._masked_log_prob(params, x, weight)
                loss = -(log_px - 0.5 * z.square().sum(1)).sum()
                loss.backward()
                optimizer.step()
            filled = self.likelihood.mean(self.decoder_params(z.detach()))
        return torch.where(observed, x, filled)

    def _masked_log_prob(self, params, x, weight) -> torch.Tensor:
        """log p(x_obs | z): the per-pixel terms summed over the observed pixels."""
        return (self.likelihood.log_prob_pixels(params, x) * weight).flatten(1).sum(1)


def _mlp(inputs: int, hidden: tuple[int, ...], outputs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), nn.SiLU()]
        inputs = width
    layers.append(nn.Linear(inputs, outputs))
    return nn.Sequential(*layers)

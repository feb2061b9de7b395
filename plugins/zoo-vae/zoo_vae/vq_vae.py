"""VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017, arXiv 1711.00937), with the codebook
updated by exponential moving averages (appendix A.1) and a small autoregressive prior over
the codes, so that the model samples and has a likelihood bound.

The encoder maps an image to a grid of vectors z_e; each is replaced by its nearest codebook
entry e_k (z_q), and the decoder models p(x | z_q). The posterior is a point mass on the codes,
so log p(x) ≥ log p(x | z_q) + log p(codes) (section 3.1): ``log_prob`` is that bound, with
the prior's exact log-probability of the code grid.

Differences from the paper: the decoder's likelihood is one of ``zoo_vae.likelihood`` (the
discretized logistic by default) rather than a Gaussian of fixed variance; the prior is a
small causal transformer over the raster-ordered code grid (the paper trains a PixelCNN
afterwards; both are autoregressive models of the codes) and it trains alongside the
autoencoder, on the current codes, with its own optimizer.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from zoo_core.errors import ConfigError
from zoo_core.generator import Example
from zoo_core.seeding import Noise
from zoo_vae.base import ImageVAE, VAESampleOptions, _eval
from zoo_vae.likelihood import Likelihood

PIXEL_STREAM = 1  # the Noise stream of p(x | z) draws in sample (codes use stream 0)


class VQVAEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: int = Field(28, ge=4, le=256, description="Side of the square images.")
    channels: int = Field(1, ge=1, le=4, description="Image channels.")
    width: int = Field(64, ge=1, le=1024, description="Channels of the convolutions.")
    res_blocks: int = Field(2, ge=0, le=16, description="Residual blocks at the code resolution.")
    downsample: int = Field(2, ge=1, le=5, description="Stride-2 convolutions (grid = size / 2^d).")
    codebook_size: int = Field(128, ge=2, le=65536, description="Codebook entries K.")
    code_dim: int = Field(32, ge=1, le=1024, description="Dimension D of each code vector.")
    likelihood: Literal["bernoulli", "gaussian", "logistic"] = Field(
        "logistic", description="The decoder's p(x | z_q)."
    )
    commitment: float = Field(0.25, ge=0, le=10, description="β of the commitment loss (eq. 3).")
    ema_decay: float = Field(0.99, ge=0, lt=1, description="γ of the codebook's EMA updates.")
    prior_width: int = Field(128, ge=8, le=2048, description="The prior transformer's width.")
    prior_layers: int = Field(4, ge=1, le=48, description="The prior's transformer blocks.")
    prior_heads: int = Field(4, ge=1, le=64, description="The prior's attention heads.")

    @model_validator(mode="after")
    def _sizes(self):
        if self.image_size % 2**self.downsample:
            raise ValueError(
                f"image_size {self.image_size} must be a multiple of 2^downsample = "
                f"{2**self.downsample}"
            )
        if self.prior_width % self.prior_heads:
            raise ValueError(
                f"prior_width {self.prior_width} must be a multiple of prior_heads "
                f"{self.prior_heads}"
            )
        return self


class VQVAE(ImageVAE):
    """A VQ-VAE over images (``(N, C, H, W)`` in [0, 1]) with a code prior.

    ``encode`` returns the quantized vectors z_q ``(N, D, h, w)`` (``encode_codes`` their
    indices ``(N, h, w)``); ``decode`` takes either. ``sample`` draws a code grid from the
    prior, position by position, then decodes it.
    """

    architecture: ClassVar[str] = "vq-vae"
    example: ClassVar[Example] = Example(
        config={"image_size": 8, "width": 8, "res_blocks": 1, "downsample": 1, "codebook_size": 6,
                "code_dim": 3, "prior_width": 16, "prior_layers": 1, "prior_heads": 2},
        dataset="digits",
    )  # fmt: skip
    Config: ClassVar[type[BaseModel]] = VQVAEConfig
    SampleOptions: ClassVar[type[BaseModel]] = VAESampleOptions
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"sample", "log_prob", "encode", "decode", "inpaint", "interpolate"}
    )
    default_batch_size: ClassVar[int] = 128
    methods: ClassVar[tuple[str, ...]] = ("prior", "iterative")
    default_steps: ClassVar[dict[str, int]] = {"prior": 1, "iterative": 20}

    def __init__(self, config: VQVAEConfig):
        super().__init__(config)
        c = config
        self.likelihood = Likelihood(c.likelihood, c.channels)
        w = c.width
        down: list[nn.Module] = [nn.Conv2d(c.channels, w, 4, 2, 1)]
        for _ in range(c.downsample - 1):
            down += [nn.SiLU(), nn.Conv2d(w, w, 4, 2, 1)]
        self.encoder = nn.Sequential(
            *down,
            *[ResBlock(w) for _ in range(c.res_blocks)],
            nn.SiLU(),
            nn.Conv2d(w, c.code_dim, 1),
        )
        up: list[nn.Module] = []
        for _ in range(c.downsample - 1):
            up += [nn.ConvTranspose2d(w, w, 4, 2, 1), nn.SiLU()]
        self.decoder = nn.Sequential(
            nn.Conv2d(c.code_dim, w, 3, 1, 1),
            *[ResBlock(w) for _ in range(c.res_blocks)],
            nn.SiLU(),
            *up,
            nn.ConvTranspose2d(w, self.likelihood.out_channels, 4, 2, 1),
        )
        # The codebook and its EMA statistics are buffers: updated by the trainer, not by
        # gradients (appendix A.1).
        codebook = torch.randn(c.codebook_size, c.code_dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("ema_count", torch.ones(c.codebook_size))
        self.register_buffer("ema_sum", codebook.clone())
        self.prior = CodePrior(c.codebook_size, self.grid**2, c.prior_width, c.prior_layers,
                               c.prior_heads)  # fmt: skip

    @property
    def grid(self) -> int:
        return self.config.image_size // 2**self.config.downsample

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.code_dim, self.grid, self.grid)

    # ----------------------------------------------------------------- quantization
    def quantize(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest codebook entries: ``(codes (N, h, w), z_q (N, D, h, w))``."""
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, self.config.code_dim).float()
        book = self.codebook.float()
        distance = flat.square().sum(1, keepdim=True) - 2 * flat @ book.T + book.square().sum(1)
        codes = distance.argmin(1)
        return codes.view(z_e.shape[0], self.grid, self.grid), self.embed(codes.view(
            z_e.shape[0], self.grid, self.grid))  # fmt: skip

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """Code indices ``(N, h, w)`` -> their vectors ``(N, D, h, w)``."""
        return self.codebook[codes].permute(0, 3, 1, 2).to(self.codebook.dtype)

    def encode_codes(self, x: torch.Tensor) -> torch.Tensor:
        """The code grid of each image, ``(N, h, w)`` int64."""
        x = self.check_images(x)
        with _eval(self), torch.no_grad():
            return self.quantize(self.encoder(x * 2 - 1))[0]

    # ----------------------------------------------------------------- the networks
    def decoder_params(self, z: torch.Tensor) -> torch.Tensor:
        if not torch.is_floating_point(z):
            z = self.embed(z)
        return self.decoder(z)

    def check_latents(self, z: torch.Tensor) -> torch.Tensor:
        grid = (self.grid, self.grid)
        if isinstance(z, torch.Tensor) and not torch.is_floating_point(z):
            if z.dim() != 3 or tuple(z.shape[1:]) != grid:
                raise ConfigError(
                    f"decode() got codes of shape {tuple(z.shape)}; {self.name} decodes code "
                    f"grids (N, {self.grid}, {self.grid}) or vectors (N, "
                    f"{', '.join(map(str, self.latent_shape))})"
                )
            if z.numel() and (z.min() < 0 or z.max() >= self.config.codebook_size):
                raise ConfigError(
                    f"decode(): codes must lie in [0, {self.config.codebook_size}), got "
                    f"{int(z.min())}..{int(z.max())}"
                )
            return z.to(self.device)
        return super().check_latents(z)

    # ----------------------------------------------------------------- bounds
    def elbo(self, x: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
        """log p(x | z_q) + log p(codes), in nats, ``(N,)``: the bound of section 3.1 (the
        posterior is a point mass, so there is nothing to draw and ``seed`` is unused)."""
        x = self.check_images(x)
        self.likelihood.check_data(x)
        codes, z_q = self.quantize(self.encoder(x * 2 - 1))
        log_px = self.likelihood.log_prob(self.decoder(z_q), x)
        return log_px + self.prior.log_prob(codes.flatten(1))

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """A lower bound on log p(x) in nats, ``(N,)``: :meth:`elbo` (deterministic)."""
        with _eval(self):
            return self.elbo(x)

    # ----------------------------------------------------------------- capabilities
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The quantized vectors z_q, ``(N, code_dim, h, w)``."""
        return self.embed(self.encode_codes(x))

    def sample_batch(self, noise: Noise, options: VAESampleOptions) -> torch.Tensor:
        codes = self.prior.sample(noise, temperature=options.temperature)  # (B, h*w)
        params = self.decoder(self.embed(codes.view(-1, self.grid, self.grid)))
        if options.pixels == "mean":
            return self.likelihood.mean(params)
        return self.likelihood.sample(params, noise, stream=PIXEL_STREAM)

    def _inpaint(self, x, observed, method, steps) -> torch.Tensor:
        """``prior``: starting from the codes of the ``iterative`` fill, the codes whose patch
        holds a missing pixel are chosen again in raster order, each as the best of its
        current code and the prior's ``candidates`` most likely codes given the codes before
        it, scored by log p(code | earlier codes) + log p(observed pixels | codes); ``steps``
        sweeps. The missing pixels are then the decoder's."""
        stride = 2**self.config.downsample
        start = super().inpaint(x, observed, method="iterative")
        with _eval(self):
            codes = self.quantize(self.encoder(start * 2 - 1))[0]
            patch_missing = F.max_pool2d((~observed).float().amax(1, keepdim=True), stride)
            positions = patch_missing[:, 0].flatten(1).bool()  # (N, h*w)
            weight = observed.float()
            n, length = positions.shape
            for _ in range(steps):
                for i in range(length):
                    rows = positions[:, i].nonzero().flatten()
                    if rows.numel() == 0:
                        continue
                    codes = self._choose(codes, rows, i, x, weight)
            filled = self.likelihood.mean(self.decoder(self.embed(codes)))
        return torch.where(observed, x, filled)

    candidates: ClassVar[int] = 8

    def _choose(self, codes, rows, i, x, weight) -> torch.Tensor:
        flat = codes.flatten(1)[rows]  # (R, h*w)
        log_prior = torch.log_softmax(self.prior.logits(flat)[:, i], -1)  # (R, K)
        top = log_prior.topk(min(self.candidates, log_prior.shape[1]), dim=1).indices
        choices = torch.cat([flat[:, i : i + 1], top], 1)  # (R, M): the current code first
        m = choices.shape[1]
        trial = flat[:, None, :].repeat(1, m, 1)  # (R, M, h*w)
        trial[:, :, i] = choices
        trial = trial.flatten(0, 1).view(-1, self.grid, self.grid)
        params = self.decoder(self.embed(trial))
        x_r = x[rows].repeat_interleave(m, 0)
        w_r = weight[rows].repeat_interleave(m, 0)
        log_px = (self.likelihood.log_prob_pixels(params, x_r) * w_r).flatten(1).sum(1)
        score = log_prior.gather(1, choices) + log_px.view(-1, m)
        best = choices.gather(1, score.argmax(1, keepdim=True))[:, 0]
        codes = codes.clone()
        codes.view(codes.shape[0], -1)[rows, i] = best
        return codes

    def nfe(self, options: BaseModel) -> int:
        return self.grid**2 + 1  # one prior pass per code, one decoder pass


class ResBlock(nn.Module):
    """x + conv1x1(SiLU(conv3x3(SiLU(x)))), the residual block of the paper (section 4.1)."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, 1, 1)
        self.conv2 = nn.Conv2d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class CodePrior(nn.Module):
    """p(codes) = Π_i p(c_i | c_<i) over the raster-ordered grid: a pre-norm causal
    transformer (learned positions, SDPA attention) whose first input is a start token."""

    def __init__(self, vocab: int, length: int, width: int, layers: int, heads: int):
        super().__init__()
        self.vocab, self.length = vocab, length
        self.token = nn.Embedding(vocab + 1, width)  # the last id is the start token
        self.position = nn.Parameter(torch.zeros(length, width))
        nn.init.normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)

    def logits(self, codes: torch.Tensor) -> torch.Tensor:
        """Next-code logits at every position, ``(N, T, vocab)``, from codes ``(N, T)``
        (position i sees codes 0..i-1)."""
        start = torch.full_like(codes[:, :1], self.vocab)
        tokens = torch.cat([start, codes[:, :-1]], 1)
        h = self.token(tokens) + self.position[: tokens.shape[1]]
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h)).float()

    def log_prob(self, codes: torch.Tensor) -> torch.Tensor:
        """log p(codes) in nats, ``(N,)``, for ``(N, length)`` code sequences."""
        logits = self.logits(codes)
        return -F.cross_entropy(logits.transpose(1, 2), codes, reduction="none").sum(1)

    def sample(self, noise: Noise, *, temperature: float = 1.0) -> torch.Tensor:
        """``(B, length)`` codes, position i drawn from ``noise`` at step i."""
        device = self.head.weight.device
        codes = torch.zeros(len(noise), 0, dtype=torch.int64, device=device)
        for i in range(self.length):
            padded = torch.cat([codes, codes.new_zeros(len(noise), 1)], 1)
            logits = self.logits(padded)[:, i] / temperature
            probs = torch.softmax(logits.double(), -1)
            choice = noise.categorical(probs.cpu(), step=i).to(device)
            codes = torch.cat([codes, choice[:, None]], 1)
        return codes


class Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, w // self.heads).unbind(2)
        a = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, w))
        return x + self.mlp(self.norm2(x))


def ema_update(model: VQVAE, z_e: torch.Tensor, codes: torch.Tensor, eps: float = 1e-5) -> float:
    """One EMA step of the codebook (appendix A.1, eqs. 6-8, with Laplace smoothing of the
    counts); returns the codebook's perplexity on this batch (how many codes are in use)."""
    k, decay = model.config.codebook_size, model.config.ema_decay
    flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, model.config.code_dim).float()
    onehot = F.one_hot(codes.flatten(), k).float()  # (M, K)
    counts = onehot.sum(0)
    model.ema_count.mul_(decay).add_(counts, alpha=1 - decay)
    model.ema_sum.mul_(decay).add_(onehot.T @ flat, alpha=1 - decay)
    total = model.ema_count.sum()
    smoothed = (model.ema_count + eps) / (total + k * eps) * total
    model.codebook.copy_(model.ema_sum / smoothed[:, None])
    usage = counts / counts.sum()
    return float(torch.exp(-(usage * torch.log(usage.clamp(min=1e-12))).sum()))

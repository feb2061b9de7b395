"""The KL-regularised autoencoder of latent diffusion.

Rombach, Blattmann, Lorenz, Esser and Ommer 2022, "High-Resolution Image Synthesis with
Latent Diffusion Models", arXiv 2112.10752, section 3.1 and appendix G: a convolutional
encoder maps an image to a diagonal Gaussian posterior over a latent ``f`` times smaller per
side (``f = 2^(levels - 1)``, 8 for Stable Diffusion), a decoder maps latents back; a small
KL penalty towards N(0, I) keeps the latent scale in check. The computation is that of
diffusers' ``AutoencoderKL``, the form in which ``stabilityai/sd-vae-ft-mse`` is published,
so that such repositories load through :func:`convert_diffusers_vae` and encode and decode
alike (verified against diffusers in the tests).

Building blocks, as in diffusers: ResNet blocks of GroupNorm (eps 1e-6), SiLU and 3x3 convs;
a stride-2 3x3 downsampling conv padded right and bottom only; a middle block of ResNet,
single-head self-attention, ResNet; nearest-neighbour 2x upsampling followed by a 3x3 conv.

What differs from diffusers (the function computed is the same, to float rounding):

- the attention goes through ``torch.nn.functional.scaled_dot_product_attention``;
- the decoder's "nearest 2x upsampling, then 3x3 conv" is computed as one 2x2 conv with four
  times the output channels on the low-resolution map, one output group per sub-pixel
  position, whose kernels are sums of the 3x3 kernel's taps (9/4 fewer multiply-adds than
  convolving the upsampled map); the parameters are the 3x3 conv's, unchanged;
- on the CPU the activations are kept channels-last (NHWC), the layout oneDNN's convolutions
  run fastest, and SiLU and the residual additions work in place (benchmarks/vae_kl.py:
  decoding runs about 1.4x faster than diffusers' on one CPU thread);
- images are the zoo's ``(N, C, H, W)`` in [0, 1] (diffusers takes [-1, 1]).

Latents are in the autoencoder's raw units: :meth:`AutoencoderKL.encode` does not multiply
by ``scaling_factor`` (Rombach et al., section 4.3.2 and appendix D.1: the factor that gives
the training latents unit variance) and :meth:`AutoencoderKL.decode` does not divide by it.
The config carries it (and ``shift_factor``, ``latents_mean``, ``latents_std`` where a
repository sets them) for the latent diffusion model that consumes the latents.

There is no ``sample``: the latent prior was never trained (the KL term only keeps the
posteriors near N(0, I)), so decoded N(0, I) draws are not images of the data; sample a latent
diffusion model and decode its latents instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch import nn

from zoo_core.errors import ConfigError
from zoo_core.generator import Example, Generator
from zoo_core.seeding import Noise, resolve_seed
from zoo_core.validation import one_line
from zoo_core.weights.renaming import current_diffusers_name, rename_state_dict

__all__ = [
    "AutoencoderKL",
    "AutoencoderKLConfig",
    "config_from_diffusers",
    "convert_diffusers_vae",
    "state_dict_from_diffusers",
]

NORM_EPS = 1e-6  # every GroupNorm of diffusers' Encoder and Decoder
LOGVAR_RANGE = (-30.0, 20.0)  # the clamp of diffusers' DiagonalGaussianDistribution


class AutoencoderKLConfig(BaseModel):
    """The architecture of :class:`AutoencoderKL`: the options of diffusers'
    ``AutoencoderKL`` that it implements, with the same names, meanings and defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    in_channels: int = Field(default=3, ge=1, description="Channels of the input images.")
    out_channels: int = Field(default=3, ge=1, description="Channels of the decoded images.")
    down_block_types: tuple[Literal["DownEncoderBlock2D"], ...] = Field(
        default=("DownEncoderBlock2D",),
        min_length=1,
        description="Encoder levels, from the input resolution down: ResNet blocks, then a "
        "stride-2 conv (except the last level). The only type implemented.",
    )
    up_block_types: tuple[Literal["UpDecoderBlock2D"], ...] = Field(
        default=("UpDecoderBlock2D",),
        min_length=1,
        description="Decoder levels, from the latent resolution up: ResNet blocks, then a "
        "2x upsampling (except the last level). The only type implemented.",
    )
    block_out_channels: tuple[int, ...] = Field(
        default=(64,),
        min_length=1,
        description="Channels of each level, from the image resolution down (the decoder "
        "uses them in reverse).",
    )
    layers_per_block: int = Field(
        default=1, ge=1, description="ResNet blocks per encoder level (one more per decoder level)."
    )
    latent_channels: int = Field(default=4, ge=1, description="Channels of the latent.")
    norm_num_groups: int = Field(default=32, ge=1, description="Groups of every GroupNorm.")
    sample_size: int = Field(
        default=32,
        ge=1,
        description="Height and width of the training images (informative: the model is "
        "fully convolutional and takes any size divisible by the downsampling factor).",
    )
    scaling_factor: float = Field(
        default=0.18215,
        gt=0,
        description="Multiply raw latents by this before a latent diffusion model (Rombach et "
        "al. 2022, section 4.3.2); encode() and decode() do not apply it.",
    )
    shift_factor: float | None = Field(
        default=None,
        description="Subtracted from raw latents before scaling, where a model family uses "
        "it; informative, like scaling_factor.",
    )
    latents_mean: tuple[float, ...] | None = Field(
        default=None, description="Per-channel latent mean, where a repository records it."
    )
    latents_std: tuple[float, ...] | None = Field(
        default=None, description="Per-channel latent std, where a repository records it."
    )
    use_quant_conv: bool = Field(
        default=True, description="A 1x1 conv on the encoder's moments (mean and log-variance)."
    )
    use_post_quant_conv: bool = Field(
        default=True, description="A 1x1 conv on the latent before the decoder."
    )
    mid_block_add_attention: bool = Field(
        default=True,
        description="Self-attention between the two ResNet blocks of the encoder's and the "
        "decoder's middle block.",
    )

    @model_validator(mode="after")
    def _check_shapes(self) -> AutoencoderKLConfig:
        levels = len(self.block_out_channels)
        if len(self.down_block_types) != levels or len(self.up_block_types) != levels:
            raise ValueError(
                f"block_out_channels, down_block_types and up_block_types need one entry per "
                f"level; got {levels}, {len(self.down_block_types)}, {len(self.up_block_types)}"
            )
        for channels in self.block_out_channels:
            if channels < 1 or channels % self.norm_num_groups:
                raise ValueError(
                    f"block_out_channels {channels} is not a positive multiple of "
                    f"norm_num_groups {self.norm_num_groups}"
                )
        for name in ("latents_mean", "latents_std"):
            value = getattr(self, name)
            if value is not None and len(value) != self.latent_channels:
                raise ValueError(
                    f"{name} has {len(value)} entries; latent_channels is {self.latent_channels}"
                )
        return self

    @property
    def downsampling(self) -> int:
        """Image pixels per latent pixel, per side: ``2^(levels - 1)``."""
        return 2 ** (len(self.block_out_channels) - 1)


# ---------------------------------------------------------------------------- building blocks
class ResBlock(nn.Module):
    """GroupNorm, SiLU, 3x3 conv, GroupNorm, SiLU, 3x3 conv; + the input (through a 1x1 conv
    where the channels change)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=NORM_EPS)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=NORM_EPS)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x), inplace=True))  # (B, C_out, H, W)
        h = self.conv2(F.silu(self.norm2(h), inplace=True))  # (B, C_out, H, W)
        return h.add_(x if self.skip is None else self.skip(x))


class SelfAttention(nn.Module):
    """Residual single-head self-attention over the ``H*W`` positions of a feature map."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=NORM_EPS)
        self.q = nn.Linear(channels, channels)
        self.k = nn.Linear(channels, channels)
        self.v = nn.Linear(channels, channels)
        self.out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).reshape(b, c, h * w).transpose(1, 2)  # (B, HW, C)
        q, k, v = self.q(tokens), self.k(tokens), self.v(tokens)  # (B, HW, C) each
        attended = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        out = self.out(attended).transpose(1, 2).reshape(b, c, h, w)  # (B, C, H, W)
        return x + out


class MidBlock(nn.Module):
    """ResNet block, self-attention (unless ``mid_block_add_attention`` is off), ResNet."""

    def __init__(self, channels: int, groups: int, attention: bool):
        super().__init__()
        self.res1 = ResBlock(channels, channels, groups)
        self.attn = SelfAttention(channels, groups) if attention else None
        self.res2 = ResBlock(channels, channels, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res1(x)
        if self.attn is not None:
            x = self.attn(x)
        return self.res2(x)


class Downsample(nn.Module):
    """A stride-2 3x3 conv after padding right and bottom by one:
    ``(B, C, H, W)`` -> ``(B, C, H/2, W/2)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # (B, C, H+1, W+1) -> (B, C, H/2, W/2)


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling, then a 3x3 conv: ``(B, C, H, W)`` -> ``(B, C, 2H,
    2W)``, computed without materialising the upsampled map.

    Output pixel ``(2i + a, 2j + b)`` sees the upsampled rows ``2i + a - 1 .. 2i + a + 1``,
    which are the low-resolution rows ``i - 1, i, i`` (``a = 0``) or ``i, i, i + 1``
    (``a = 1``): a 2x2 window of the low-resolution map (padded by one) at offset ``(a, b)``,
    weighted by the 3x3 kernel's taps summed over the repeated rows and columns. One 2x2 conv
    with 4C outputs computes the four sub-pixel offsets at once (16 instead of 36 multiply-adds
    per input channel and output pixel); the offsets are then interleaved.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        kernels = _subpixel_kernels(self.conv.weight)  # (4C, C, 2, 2)
        bias = self.conv.bias.repeat(4)  # (4C,)
        # window (i, j) of the map padded by one covers low-resolution rows i-1, i, cols j-1, j
        full = F.conv2d(x, kernels, bias, padding=1)  # (B, 4C, H+1, W+1)
        full = full.unflatten(1, (2, 2, c))  # (B, a, b, C, H+1, W+1)
        layout = (
            torch.channels_last
            if x.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format
        )
        out = torch.empty(
            (b, c, 2 * h, 2 * w), dtype=x.dtype, device=x.device, memory_format=layout
        )
        grid = out.view(b, c, h, 2, w, 2)  # output pixel (2i + a, 2j + b) at [.., i, a, j, b]
        for a in (0, 1):
            for bb in (0, 1):
                # offset (a, b) is the window whose top-left corner is padded pixel (i+a, j+b)
                grid[:, :, :, a, :, bb] = full[:, a, bb, :, a : a + h, bb : bb + w]
        return out  # (B, C, 2H, 2W)


def _subpixel_kernels(weight: torch.Tensor) -> torch.Tensor:
    """The 3x3 kernel ``(O, I, 3, 3)`` as the four 2x2 kernels of :class:`Upsample`, stacked
    as ``(4 O, I, 2, 2)`` (output channel ``(2 a + b) O + o``), summed in float32."""
    # taps[a, r, y]: whether 3x3 row y falls on window row r for sub-pixel offset a
    taps = torch.tensor(
        [[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]],
        device=weight.device,
    )
    kernels = torch.einsum("ary,bsx,oiyx->aboirs", taps, taps, weight.float())
    return kernels.reshape(4 * weight.shape[0], weight.shape[1], 2, 2).to(weight.dtype)


class DownLevel(nn.Module):
    """``layers_per_block`` ResNet blocks, then a downsampling unless it is the last level."""

    def __init__(self, in_channels: int, channels: int, layers: int, groups: int, down: bool):
        super().__init__()
        self.res = nn.ModuleList(
            ResBlock(in_channels if i == 0 else channels, channels, groups) for i in range(layers)
        )
        self.downsample = Downsample(channels) if down else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for res in self.res:
            x = res(x)
        return x if self.downsample is None else self.downsample(x)


class UpLevel(nn.Module):
    """``layers_per_block + 1`` ResNet blocks, then an upsampling unless it is the last level."""

    def __init__(self, in_channels: int, channels: int, layers: int, groups: int, up: bool):
        super().__init__()
        self.res = nn.ModuleList(
            ResBlock(in_channels if i == 0 else channels, channels, groups) for i in range(layers)
        )
        self.upsample = Upsample(channels) if up else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for res in self.res:
            x = res(x)
        return x if self.upsample is None else self.upsample(x)


class Encoder(nn.Module):
    """Image ``(B, in_channels, H, W)`` in [-1, 1] -> the posterior's moments ``(B, 2 *
    latent_channels, H/f, W/f)`` (mean, then log-variance; before ``quant_conv``)."""

    def __init__(self, config: AutoencoderKLConfig):
        super().__init__()
        channels, groups = config.block_out_channels, config.norm_num_groups
        self.conv_in = nn.Conv2d(config.in_channels, channels[0], 3, padding=1)
        self.down = nn.ModuleList(
            DownLevel(
                channels[max(i - 1, 0)],
                channels[i],
                config.layers_per_block,
                groups,
                down=i < len(channels) - 1,
            )
            for i in range(len(channels))
        )
        self.mid = MidBlock(channels[-1], groups, config.mid_block_add_attention)
        self.norm_out = nn.GroupNorm(groups, channels[-1], eps=NORM_EPS)
        self.conv_out = nn.Conv2d(channels[-1], 2 * config.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)  # (B, C0, H, W)
        for level in self.down:
            h = level(h)
        h = self.mid(h)  # (B, C_last, H/f, W/f)
        return self.conv_out(F.silu(self.norm_out(h), inplace=True))  # (B, 2 latent, H/f, W/f)


class Decoder(nn.Module):
    """Latent ``(B, latent_channels, h, w)`` (after ``post_quant_conv``) -> image ``(B,
    out_channels, f h, f w)`` in [-1, 1] (unclamped)."""

    def __init__(self, config: AutoencoderKLConfig):
        super().__init__()
        channels, groups = config.block_out_channels[::-1], config.norm_num_groups
        self.conv_in = nn.Conv2d(config.latent_channels, channels[0], 3, padding=1)
        self.mid = MidBlock(channels[0], groups, config.mid_block_add_attention)
        self.up = nn.ModuleList(
            UpLevel(
                channels[max(i - 1, 0)],
                channels[i],
                config.layers_per_block + 1,
                groups,
                up=i < len(channels) - 1,
            )
            for i in range(len(channels))
        )
        self.norm_out = nn.GroupNorm(groups, channels[-1], eps=NORM_EPS)
        self.conv_out = nn.Conv2d(channels[-1], config.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))  # (B, C_last, h, w)
        for level in self.up:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h), inplace=True))  # (B, out, f h, f w)


# --------------------------------------------------------------------------------- the model
class AutoencoderKL(Generator):
    """The latent-diffusion KL autoencoder (Rombach et al. 2022, arXiv 2112.10752).

    Capabilities ``encode`` and ``decode``; no ``sample`` (see ``unsupported``). Both run in
    the model's dtype and device (``model.to(torch.bfloat16)`` works, on CPU too) and return
    float32; both run without gradients.

    Args:
        config: the architecture.

    State-dict names: ``encoder.{conv_in, down.{i}.res.{j}, down.{i}.downsample.conv, mid,
    norm_out, conv_out}``, ``quant_conv``, ``post_quant_conv``, ``decoder.{conv_in, mid,
    up.{i}.res.{j}, up.{i}.upsample.conv, norm_out, conv_out}``; a middle block holds ``res1,
    attn, res2``; ResNet blocks ``norm1, conv1, norm2, conv2, skip``; attention ``norm, q,
    k, v, out``.
    """

    architecture: ClassVar[str] = "autoencoder-kl"
    example: ClassVar[Example] = Example(
        config={"in_channels": 1, "out_channels": 1, "block_out_channels": [8, 16],
                "down_block_types": ["DownEncoderBlock2D"] * 2,
                "up_block_types": ["UpDecoderBlock2D"] * 2, "layers_per_block": 1,
                "latent_channels": 2, "norm_num_groups": 4, "sample_size": 8},
        dataset="digits",
    )  # fmt: skip
    Config: ClassVar[type[BaseModel]] = AutoencoderKLConfig
    modality: ClassVar[str] = "image"
    capabilities: ClassVar[frozenset[str]] = frozenset({"encode", "decode"})
    unsupported: ClassVar[dict[str, str]] = {
        "sample": "its latent prior is not a trained model (the KL term only keeps the "
        "latents near N(0, I)), so decoded N(0, I) draws are not images of the data; sample "
        "a latent diffusion model and decode its latents instead"
    }
    config: AutoencoderKLConfig

    def __init__(self, config: AutoencoderKLConfig):
        super().__init__(config)
        latent = config.latent_channels
        self.encoder = Encoder(config)
        self.quant_conv = nn.Conv2d(2 * latent, 2 * latent, 1) if config.use_quant_conv else None
        self.post_quant_conv = nn.Conv2d(latent, latent, 1) if config.use_post_quant_conv else None
        self.decoder = Decoder(config)

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.conv_in.weight.dtype

    def sample_batch(self, noise: Noise, options: BaseModel) -> torch.Tensor:
        """Not available: raises the ``CapabilityError`` that says why."""
        raise self._missing("sample")

    # ----------------------------------------------------------------- encode / decode
    @torch.no_grad()
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The diagonal Gaussian posterior q(z | x), as diffusers' ``latent_dist``.

        Args:
            x: images ``(N, in_channels, H, W)`` in [0, 1], H and W divisible by
                ``2^(levels - 1)``.

        Returns:
            ``(mean, logvar)``, each float32 ``(N, latent_channels, H/f, W/f)`` in raw latent
            units; ``logvar`` clamped to [-30, 20] as diffusers does.
        """
        x = self._check_images(x)
        moments = self.encoder(x * 2 - 1)  # (N, 2 latent, H/f, W/f)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        mean, logvar = moments.float().chunk(2, dim=1)
        return mean, logvar.clamp(*LOGVAR_RANGE)

    @torch.no_grad()
    def encode(
        self, x: torch.Tensor, *, sample: bool = False, seed: int | None = None
    ) -> torch.Tensor:
        """Images to latents, in raw units (multiply by ``config.scaling_factor`` for a
        latent diffusion model).

        Args:
            x: images ``(N, in_channels, H, W)`` in [0, 1], H and W divisible by
                ``2^(levels - 1)`` (8 for Stable Diffusion's autoencoders).
            sample: False: the posterior mean; True: a draw ``mean + std * eps``.
            seed: with ``sample``, the draw of example ``i`` depends only on ``(seed, i)``
                (the zoo's seeding rule); None draws a fresh seed.

        Returns:
            float32 ``(N, latent_channels, H/f, W/f)``.

        Raises:
            ConfigError: images of the wrong shape, dtype or range; ``seed`` without
                ``sample``.
        """
        if seed is not None and not sample:
            raise ConfigError("encode(): seed applies to sample=True only (the mean is exact)")
        mean, logvar = self.posterior(x)
        if not sample:
            return mean
        noise = Noise.for_range(resolve_seed(seed), 0, mean.shape[0], mean.device)
        eps = noise.randn(*mean.shape[1:])  # (N, latent, h, w) float32
        return mean + torch.exp(0.5 * logvar) * eps

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents in raw units (divide a latent diffusion model's by ``scaling_factor``
        first) to images.

        Args:
            z: ``(N, latent_channels, h, w)``, any h, w >= 1.

        Returns:
            float32 images ``(N, out_channels, f h, f w)`` in [0, 1] (clamped).

        Raises:
            ConfigError: latents of the wrong shape or dtype, saying what is expected.
        """
        z = self._check_latents(z)
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        images = self.decoder(z)  # (N, out_channels, f h, f w) in about [-1, 1]
        return ((images.float() + 1) / 2).clamp_(0, 1)

    # ----------------------------------------------------------------- checks
    def _check_images(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` on the model's device and in its dtype, after the shape and range checks."""
        c, f = self.config, self.config.downsampling
        expected = f"images (N, {c.in_channels}, H, W) in [0, 1] with H and W divisible by {f}"
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            what = f"a {x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ConfigError(f"encode() got {what}; {self.name} takes float {expected}")
        if x.dim() != 4 or x.shape[1] != c.in_channels or x.shape[0] == 0:
            raise ConfigError(f"encode() got shape {tuple(x.shape)}; {self.name} takes {expected}")
        h, w = x.shape[2:]
        if h == 0 or w == 0 or h % f or w % f:
            raise ConfigError(
                f"encode() got {h}x{w} images; {self.name} downsamples by {f}: give {expected} "
                f"(pad or crop to e.g. {max(f, h - h % f)}x{max(f, w - w % f)})"
            )
        if x.min() < 0 or x.max() > 1:
            raise ConfigError(
                "encode() got pixel values outside [0, 1]; the zoo's images are in [0, 1] "
                "(map [-1, 1] images with (x + 1) / 2)"
            )
        return _fast_layout(x.to(self.device, self.dtype))

    def _check_latents(self, z: torch.Tensor) -> torch.Tensor:
        c = self.config
        expected = (
            f"latents (N, {c.latent_channels}, h, w) in raw units (any h, w >= 1; the images "
            f"are {c.downsampling}h x {c.downsampling}w)"
        )
        if not isinstance(z, torch.Tensor) or not z.is_floating_point():
            what = f"a {z.dtype} tensor" if isinstance(z, torch.Tensor) else type(z).__name__
            raise ConfigError(f"decode() got {what}; {self.name} decodes float {expected}")
        if z.dim() != 4 or z.shape[1] != c.latent_channels or 0 in z.shape:
            raise ConfigError(
                f"decode() got shape {tuple(z.shape)}; {self.name} decodes {expected}"
            )
        return _fast_layout(z.to(self.device, self.dtype))


def _fast_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` channels-last on the CPU, where oneDNN's convolutions run faster on it and every
    layer here keeps that layout; as it is on other devices."""
    if x.device.type != "cpu":
        return x
    return x.contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------------ foreign-checkpoint conversion
# AutoencoderKL's arguments that this model implements at these values only; then the keys of
# a config.json that do not change the computation.
_DIFFUSERS_FIXED: dict[str, tuple[Any, ...]] = {"act_fn": ("silu", "swish")}
_DIFFUSERS_IGNORED = {
    "_class_name",
    "_diffusers_version",
    "_name_or_path",
    "_use_default_values",
    "force_upcast",  # a pipeline's hint to run the VAE in float32; the dtype is the caller's
}
_DIFFUSERS_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


def config_from_diffusers(config: Mapping[str, Any]) -> AutoencoderKLConfig:
    """The :class:`AutoencoderKLConfig` of a diffusers ``AutoencoderKL`` ``config.json``.

    A key the file omits takes ``AutoencoderKL``'s default, as in diffusers (the
    sd-vae-ft-mse file predates ``scaling_factor`` and omits it: 0.18215).

    Raises:
        ConfigError: naming the key of an option this model does not implement (another
            block type, an activation other than SiLU, a list ``sample_size``, ...), an
            unknown key, or a bad value.
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"a diffusers VAE config must be a mapping, got {type(config).__name__}")
    name = config.get("_class_name", "AutoencoderKL")
    if name != "AutoencoderKL":
        raise ConfigError(f"_class_name {name!r}: only a diffusers AutoencoderKL converts")
    for key, allowed in _DIFFUSERS_FIXED.items():
        if key in config and config[key] not in allowed:
            raise ConfigError(
                f"{key}={config[key]!r} is not supported by autoencoder-kl "
                f"(supported: {', '.join(map(repr, allowed))})"
            )
    fields = {}
    for key, value in config.items():
        if key in _DIFFUSERS_FIXED or key in _DIFFUSERS_IGNORED:
            continue
        if key not in AutoencoderKLConfig.model_fields:
            raise ConfigError(
                f"{key!r} is not an option of diffusers' AutoencoderKL that autoencoder-kl knows"
            )
        fields[key] = value
    try:
        return AutoencoderKLConfig.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError(
            "diffusers AutoencoderKL config: " + one_line(exc, whole="(config)")
        ) from None


# Our state-dict names -> diffusers' current ones, applied in order.
_TO_DIFFUSERS = [
    (r"^(encoder|decoder)\.norm_out\.", r"\1.conv_norm_out."),
    (r"^encoder\.down\.(\d+)\.res\.", r"encoder.down_blocks.\1.resnets."),
    (r"^encoder\.down\.(\d+)\.downsample\.", r"encoder.down_blocks.\1.downsamplers.0."),
    (r"^decoder\.up\.(\d+)\.res\.", r"decoder.up_blocks.\1.resnets."),
    (r"^decoder\.up\.(\d+)\.upsample\.", r"decoder.up_blocks.\1.upsamplers.0."),
    (r"\.mid\.res1\.", ".mid_block.resnets.0."),
    (r"\.mid\.res2\.", ".mid_block.resnets.1."),
    (r"\.mid\.attn\.", ".mid_block.attentions.0."),
    (r"\.skip\.", ".conv_shortcut."),
    (r"\.norm\.", ".group_norm."),
    (r"\.q\.", ".to_q."),
    (r"\.k\.", ".to_k."),
    (r"\.v\.", ".to_v."),
    (r"\.out\.", ".to_out.0."),
]


def _diffusers_name(name: str) -> str:
    for pattern, replacement in _TO_DIFFUSERS:
        name = re.sub(pattern, replacement, name)
    return name


def state_dict_from_diffusers(
    state: Mapping[str, torch.Tensor],
    config: AutoencoderKLConfig,
    *,
    source: str = "the diffusers AutoencoderKL state dict",
) -> dict[str, torch.Tensor]:
    """Rename a diffusers ``AutoencoderKL`` state dict to :class:`AutoencoderKL`'s names.

    Accepts the current attention names (``to_q``, ``to_k``, ``to_v``, ``to_out.0``) and
    the deprecated ones (``query``, ``key``, ``value``, ``proj_attn``), and attention weights
    stored as 1x1 convs ``(C, C, 1, 1)`` (as converted from the original checkpoints) as
    well as linear ``(C, C)``. The tensors are not copied.

    Raises:
        StateDictMismatchError: listing, by their names in ``source``, the tensors that are
            missing, unexpected (or given twice under an old and a new name), or mis-shaped
            for ``config``.
    """
    with torch.device("meta"):  # names and shapes only, no memory
        expected = {name: tuple(t.shape) for name, t in AutoencoderKL(config).state_dict().items()}
    return rename_state_dict(
        state, expected, _diffusers_name, source=source, alias=current_diffusers_name,
        adapt=_linear_attention,
    )  # fmt: skip


def _linear_attention(name: str, tensor: torch.Tensor) -> torch.Tensor:
    if ".attentions." in name and tensor.dim() == 4 and tensor.shape[2:] == (1, 1):
        return tensor.flatten(1)  # a 1x1 conv's (C, C, 1, 1) weight is a linear (C, C)
    return tensor


def convert_diffusers_vae(files, card) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The converter of format ``diffusers-vae``: a diffusers ``AutoencoderKL`` repository
    (config.json, diffusion_pytorch_model.safetensors) -> the native config and state dict.

    Args:
        files: the resolved weights source (``zoo_core.weights.sources.WeightFiles``).
        card: the model card being loaded.

    Raises:
        ConfigError: a config.json this model does not implement (see
            :func:`config_from_diffusers`).
        WeightsNotFoundError: no diffusion_pytorch_model file.
        StateDictMismatchError: a missing, unexpected or mis-shaped tensor, by name.
    """
    config = config_from_diffusers(files.json("config.json"))
    name = next((n for n in _DIFFUSERS_FILES if files.has(n)), _DIFFUSERS_FILES[0])
    state = state_dict_from_diffusers(files.tensors(name), config, source=f"{files.source}/{name}")
    return config.model_dump(), state

"""StyleGAN2: Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020, "Analyzing and Improving
the Image Quality of StyleGAN", arXiv 1912.04958, as laid out in its official PyTorch port
(StyleGAN2-ADA, Karras et al. 2020, arXiv 2006.06676).

Generator: a mapping network ``f: z -> w`` (``z`` normalized to unit second moment, then
``mapping_layers`` fully connected layers with leaky ReLU 0.2 and a learning rate 100 times
lower than the rest); the tracked mean ``w_avg`` (a moving average with ``w_avg_beta`` of the
batches' ``w`` in training) for the truncation trick ``w' = w_avg + psi (w - w_avg)``; a
synthesis network from a learned constant through modulated 3x3 convolutions with weight
demodulation (eq. 1-3), per-pixel noise inputs with learned strengths, bias and leaky ReLU,
two convolutions per resolution; the skip architecture of fig. 7b: each resolution's toRGB (a
modulated 1x1 convolution without demodulation) is added to the upsampled sum of the coarser
ones. Every upsampling (features and the RGB sum) uses the paper's [1, 3, 3, 1] FIR filter.
Style mixing regularization in training: with probability ``mixing_prob`` a second latent's
``w`` takes over from a crossover layer drawn uniformly. Every layer has the equalized
learning rate: weights drawn from N(0, 1) and scaled at run time by He's constant.

Discriminator: the residual architecture of fig. 7c: fromRGB (1x1) at full resolution, one
block per resolution (two 3x3 convolutions, the second downsampling, plus a 1x1 downsampling
skip, the sum scaled by 1/sqrt(2)), downsampling with the same FIR filter, then the minibatch
standard deviation layer (StyleGAN, arXiv 1812.04948; Karras et al. 2018, arXiv 1710.10196),
a 3x3 convolution, a fully connected layer and the linear read-out.

What differs from the paper:
- the constant input is ``s0 x s0`` with ``image_size = s0 * 2^k`` (7x7 for 28x28
  Fashion-MNIST); the paper's is 4x4 (for sides that are powers of two it is 4x4 here too);
- channels at resolution ``r`` are ``min(width * image_size / r, channel_max)`` (the official
  code's ``channel_base`` is ``width * image_size``), sized for a CPU rather than 512;
- each noise input has one learned strength per channel (StyleGAN's per-feature factors);
  the official StyleGAN2 code learns one scalar per layer;
- a feature upsampling is the FIR upsampling followed by the 3x3 convolution; the official
  code runs a stride-2 transposed convolution and then the filter. Both are a zero insertion
  followed by two linear filters, which commute, so they agree up to the borders;
- the modulated convolution scales the activations before and after one shared convolution
  (the official code's non-fused form), not a grouped convolution with per-sample weights
  (its fused form): the two are equal (a test checks it) and the first is about 2.5 times
  faster on a CPU;
- ``w_avg`` moves at every training forward pass (the official code updates it in the
  discriminator's passes only);
- conditioning (``num_classes``): a label embedding, normalized, concatenated to the
  normalized ``z`` before the mapping network (as StyleGAN2-ADA), and a projection
  discriminator (Miyato & Koyama 2018, arXiv 1802.05637) instead of ADA's mapped projection;
- the minibatch standard deviation groups ``min(group size, B)`` samples, or the largest
  divisor of the batch below that when the batch is not a multiple;
- no path length regularization (the trainer does not implement it), no lazy-regularization
  correction of Adam's lr and betas, no mixed-precision layers or activation clamping.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from zoo_core.errors import ConfigError
from zoo_core.generator import Example
from zoo_core.seeding import Noise
from zoo_gan.base import GAN, LATENT_STREAM, GANSampleOptions, ImageSize, _inference, start_size


class StyleGANConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: ImageSize = Field(
        28, description="Side of the square images: s0 * 2^k, s0 in 4..7 (the constant is s0²)."
    )
    channels: int = Field(1, ge=1, description="Image channels.")
    z_dim: int = Field(128, ge=1, description="Latent dimension (standard normal; paper: 512).")
    w_dim: int = Field(
        128, ge=1, description="Dimension of the intermediate latent w (paper: 512)."
    )
    mapping_layers: int = Field(
        8, ge=1, description="Fully connected layers of the mapping network (8 in the paper)."
    )
    mapping_lr_mul: float = Field(
        0.01, gt=0, le=1, description="Learning-rate multiplier of the mapping network (0.01)."
    )
    width: int = Field(
        64,
        ge=1,
        description="Channels at full resolution, doubled at each halving of the side "
        "(the official channel_base is width * image_size).",
    )
    channel_max: int = Field(256, ge=1, description="Cap on the channels of any resolution.")
    num_classes: int | None = Field(
        None, ge=2, description="Classes to condition on (a label embedding joins z); None: none."
    )
    mixing_prob: float = Field(
        0.9, ge=0, le=1, description="Probability of style mixing per training batch (0.9)."
    )
    w_avg_beta: float = Field(
        0.995, ge=0, lt=1, description="Decay of the moving average w_avg used by truncation."
    )


class StyleGANDiscriminatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(
        64, ge=1, description="Channels at full resolution, doubled at each halving of the side."
    )
    channel_max: int = Field(256, ge=1, description="Cap on the channels of any resolution.")
    mbstd_group_size: int = Field(
        4, ge=1, description="Samples per group of the minibatch standard deviation (4)."
    )
    mbstd_channels: int = Field(
        1, ge=1, description="Feature maps the minibatch standard deviation appends (1)."
    )

    @property
    def uses_batch_norm(self) -> bool:
        return False


# ----------------------------------------------------------------------------- building blocks
FIR = (1.0, 3.0, 3.0, 1.0)  # the paper's resampling filter (binomial, separable)


def _fir_kernel(channels: int, gain: float, like: torch.Tensor) -> torch.Tensor:
    f = torch.tensor(FIR, dtype=like.dtype, device=like.device)
    k = torch.outer(f, f)
    return (k * (gain / k.sum())).expand(channels, 1, 4, 4)  # (C, 1, 4, 4) depthwise


def upsample2d(x: torch.Tensor) -> torch.Tensor:
    """Double the side: zero insertion, then the FIR filter with gain 4 (a constant stays
    constant away from the border). ``(B, C, H, W)`` to ``(B, C, 2H, 2W)``."""
    c = x.shape[1]
    return F.conv_transpose2d(x, _fir_kernel(c, 4.0, x), stride=2, padding=1, groups=c)


def blur(x: torch.Tensor, pad: int) -> torch.Tensor:
    """The FIR filter with unit gain, ``pad`` zeros each side: side ``H`` to ``H + 2 pad - 3``."""
    c = x.shape[1]
    return F.conv2d(F.pad(x, (pad,) * 4), _fir_kernel(c, 1.0, x), groups=c)


def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU 0.2 with the gain sqrt(2) that keeps the second moment (official ``lrelu``)."""
    return F.leaky_relu(x, 0.2) * math.sqrt(2)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row of ``(B, D)`` to unit mean square (the mapping network's pixel norm)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class EqualLinear(nn.Module):
    """A fully connected layer with the equalized learning rate: ``W ~ N(0, 1) / lr_mul``,
    used as ``W * lr_mul / sqrt(in)``; the bias as ``b * lr_mul``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.bias_gain
        x = F.linear(x, self.weight * self.weight_gain, bias)
        return leaky_relu(x) if self.activation else x


class EqualConv2d(nn.Module):
    """A ``k x k`` convolution (same padding) with the equalized learning rate, optionally
    downsampling by 2: the FIR filter, then a stride-2 convolution (as the official code)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        *,
        bias: bool = True,
        activation: bool = False,
        down: bool = False,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel * kernel)
        self.activation, self.down, self.pad = activation, down, kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight * self.weight_gain
        if self.down:  # (B, I, H, W) -> (B, O, H/2, W/2)
            x = F.conv2d(blur(x, self.pad + 1), weight, self.bias, stride=2)
        else:
            x = F.conv2d(x, weight, self.bias, padding=self.pad)
        return leaky_relu(x) if self.activation else x


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    demodulate: bool = True,
    fused: bool = True,
    eps: float = 1e-8,
) -> torch.Tensor:
    """The modulated convolution of StyleGAN2, same padding.

    Args:
        x: ``(B, I, H, W)`` input.
        weight: ``(O, I, k, k)`` shared weights (already scaled by the equalized-lr gain).
        styles: ``(B, I)`` per-sample scales ``s`` of the input channels.
        demodulate: divide each output channel by ``sigma`` (eq. 3).
        fused: one grouped convolution with each sample's own weights (the paper's
            implementation); else the equivalent scaling of the activations by ``s`` before
            and ``1 / sigma`` after one shared convolution.

    Returns:
        ``(B, O, H, W)``.
    """
    b, i, h, w = x.shape
    o, _, k, _ = weight.shape
    if fused:
        wb = weight[None] * styles[:, None, :, None, None]  # (B, O, I, k, k): eq. 1
        if demodulate:  # eq. 2-3: w'' = w' / sqrt(sum_{i,k} w'^2 + eps)
            wb = wb * (wb.square().sum(dim=(2, 3, 4), keepdim=True) + eps).rsqrt()
        out = F.conv2d(x.reshape(1, b * i, h, w), wb.reshape(b * o, i, k, k), padding=k // 2,
                       groups=b)  # fmt: skip
        return out.reshape(b, o, *out.shape[2:])
    out = F.conv2d(x * styles[:, :, None, None], weight, padding=k // 2)  # (B, O, H, W)
    if demodulate:
        sigma2 = styles.square() @ weight.square().sum(dim=(2, 3)).T  # (B, O): eq. 3
        out = out * (sigma2 + eps).rsqrt()[:, :, None, None]
    return out


class SynthesisLayer(nn.Module):
    """Modulated, demodulated 3x3 convolution (upsampling first if ``up``), noise input with a
    learned strength per channel, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, up: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # A: w -> styles
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.weight_gain = 1 / math.sqrt(in_channels * 9)
        self.noise_strength = nn.Parameter(torch.zeros(out_channels))  # B, starts at 0
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.up = up

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = upsample2d(x)  # (B, I, 2H, 2W)
        styles = self.affine(w)  # (B, I)
        x = modulated_conv2d(x, self.weight * self.weight_gain, styles, fused=False)
        x = x + noise * self.noise_strength[None, :, None, None]  # noise: (B, 1, H, W)
        return leaky_relu(x + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to image channels, no demodulation, bias, linear."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.weight_gain = 1 / math.sqrt(in_channels)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain  # (B, I)
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=False)
        return x + self.bias[None, :, None, None]


class MappingNetwork(nn.Module):
    """``z`` (and a label) to ``w``: pixel norm, then an MLP with leaky ReLU 0.2."""

    def __init__(self, config: StyleGANConfig):
        super().__init__()
        classes, w_dim = config.num_classes, config.w_dim
        self.num_classes = classes
        self.embed = EqualLinear(classes, w_dim) if classes is not None else None
        features = config.z_dim + (w_dim if classes is not None else 0)
        self.layers = nn.Sequential(*[
            EqualLinear(features if i == 0 else w_dim, w_dim, lr_mul=config.mapping_lr_mul,
                        activation=True)
            for i in range(config.mapping_layers)
        ])  # fmt: skip

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        x = normalize_2nd_moment(z)  # (B, z_dim)
        if self.embed is not None:
            onehot = F.one_hot(labels, self.num_classes).to(z.dtype)  # (B, classes)
            x = torch.cat([x, normalize_2nd_moment(self.embed(onehot))], dim=1)
        return self.layers(x)  # (B, w_dim)


class SynthesisNetwork(nn.Module):
    """Per-layer ``w`` ``(B, num_ws, w_dim)`` to images ``(B, C, H, W)``, skip architecture.

    Resolutions ``s0, 2 s0, ..., image_size``: the first has the constant and one convolution,
    the others an upsampling convolution and a convolution; each has a toRGB, which shares its
    ``w`` with the next resolution's first convolution (as the official code), so
    ``num_ws = 2 k + 2``.
    """

    def __init__(self, config: StyleGANConfig):
        super().__init__()
        s0, k = start_size(config.image_size)
        sizes = [s0 * 2**i for i in range(k + 1)]
        width = [min(config.width * config.image_size // r, config.channel_max) for r in sizes]
        self.const = nn.Parameter(torch.randn(width[0], s0, s0))
        self.convs = nn.ModuleList([SynthesisLayer(width[0], width[0], config.w_dim)])
        self.sizes = [s0]  # side of each conv's output, for its noise input
        self.torgbs = nn.ModuleList([ToRGB(width[0], config.channels, config.w_dim)])
        for i in range(1, k + 1):
            self.convs.append(SynthesisLayer(width[i - 1], width[i], config.w_dim, up=True))
            self.convs.append(SynthesisLayer(width[i], width[i], config.w_dim))
            self.sizes += [sizes[i], sizes[i]]
            self.torgbs.append(ToRGB(width[i], config.channels, config.w_dim))
        self.num_ws = 2 * k + 2

    def forward(self, ws: torch.Tensor, noise: Noise | None = None) -> torch.Tensor:
        b = ws.shape[0]
        x = self.const[None].expand(b, -1, -1, -1)  # (B, C0, s0, s0)
        img = None
        for r, torgb in enumerate(self.torgbs):
            layers = [0] if r == 0 else [2 * r - 1, 2 * r]  # conv indices of resolution r
            for j in layers:  # conv j uses w_j and noise stream 1 + j
                x = self.convs[j](x, ws[:, j], self._noise(noise, j, b, ws))
            y = torgb(x, ws[:, layers[-1] + 1])  # (B, C, H, W)
            img = y if img is None else upsample2d(img) + y
        return img

    def _noise(self, noise: Noise | None, j: int, b: int, like: torch.Tensor) -> torch.Tensor:
        side = self.sizes[j]
        if noise is None:  # training: torch's global generator
            return torch.randn(b, 1, side, side, device=like.device, dtype=like.dtype)
        draw = noise.randn(1, side, side, stream=LATENT_STREAM + 1 + j)  # (B, 1, H, W)
        return draw.to(like.device, like.dtype)


# ----------------------------------------------------------------------------- the Generator
class StyleGAN(GAN):
    """The StyleGAN2 generator: ``sample`` gives images ``(n, channels, image_size,
    image_size)`` in [0, 1]; ``truncation`` is ψ of ``w_avg + ψ (w - w_avg)``, applied to every
    layer. Built with ``num_classes``, the instance declares ``conditional`` and ``sample``
    takes ``labels``.
    """

    architecture: ClassVar[str] = "stylegan"
    example: ClassVar[Example] = Example(
        config={"image_size": 16, "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "width": 4,
                "channel_max": 16},
    )  # fmt: skip
    Config: ClassVar[type[BaseModel]] = StyleGANConfig
    modality: ClassVar[str] = "image"
    capabilities: ClassVar[frozenset[str]] = frozenset({"sample", "interpolate"})

    def __init__(self, config: StyleGANConfig):
        super().__init__(config)
        if config.num_classes is not None:
            self.capabilities = type(self).capabilities | {"conditional"}
        self.mapping = MappingNetwork(config)
        self.synthesis = SynthesisNetwork(config)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))
        self.num_ws = self.synthesis.num_ws

    def to_w(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        truncation: float = 1.0,
        *,
        update_w_avg: bool = False,
    ) -> torch.Tensor:
        """``z`` ``(B, z_dim)`` to ``w`` ``(B, w_dim)``, truncated toward ``w_avg`` by ψ.

        Args:
            update_w_avg: first move ``w_avg`` toward the batch mean of ``w`` (training).
        """
        if labels is None and self.num_classes is not None:
            raise ConfigError(f"{self.name} is class-conditional: pass labels")
        if labels is not None and self.num_classes is None:
            raise self.capability_error("conditional", "labels do not apply")
        w = self.mapping(z, labels)  # (B, w_dim)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, self.config.w_avg_beta))
        if truncation != 1:
            w = self.w_avg + truncation * (w - self.w_avg)  # the truncation trick
        return w

    def synthesize(
        self,
        z: torch.Tensor,
        labels: torch.Tensor | None = None,
        truncation: float = 1.0,
        noise: Noise | None = None,
    ) -> torch.Tensor:
        """Latents ``(B, z_dim)`` to images ``(B, C, H, W)`` in about [-1, 1] (not clamped).

        In training (``self.training`` and ``noise`` None) the noise inputs come from torch's
        global generator, ``w_avg`` moves, and styles are mixed with probability
        ``mixing_prob``. A call with seeded ``noise`` never mixes nor moves ``w_avg``.
        """
        training = self.training and noise is None
        w = self.to_w(z, labels, truncation, update_w_avg=training)
        ws = w[:, None].expand(-1, self.num_ws, -1)  # (B, num_ws, w_dim)
        if training and self.config.mixing_prob > 0 and torch.rand(()) < self.config.mixing_prob:
            cutoff = int(torch.randint(1, self.num_ws, ()))  # crossover layer, uniform
            w2 = self.to_w(torch.randn_like(z), labels, truncation)  # (B, w_dim)
            tail = w2[:, None].expand(-1, self.num_ws - cutoff, -1)
            ws = torch.cat([ws[:, :cutoff], tail], dim=1)  # layers >= cutoff take w2
        return self.synthesis(ws, noise)

    @torch.no_grad()
    def interpolate(
        self,
        a: int | torch.Tensor,
        b: int | torch.Tensor,
        steps: int,
        *,
        method: Literal["slerp", "linear"] | None = None,
        labels: int | None = None,
        truncation: float = 1.0,
        seed: int = 0,
        space: Literal["z", "w"] = "z",
    ) -> torch.Tensor:
        """Samples along a path between two latents, in ``z`` or in ``w``.

        Args:
            a, b, steps, labels, truncation, seed: as in :meth:`GAN.interpolate`.
            method: in ``z``: ``"slerp"`` (default) or ``"linear"``; in ``w``: ``"linear"``
                only (the default; ``w`` is not Gaussian, and the paper's perceptual path
                length interpolates linearly there).
            space: ``"z"``: the path between the latents; ``"w"``: the straight line between
                their (truncated) ``w``, the space of the paper's perceptual path length.

        Returns:
            ``(steps, C, H, W)`` images in [0, 1].
        """
        if space not in ("z", "w"):
            raise ConfigError(f"space must be 'z' or 'w', got {space!r}")
        if space == "z":
            return super().interpolate(a, b, steps, method=method or "slerp", labels=labels,
                                       truncation=truncation, seed=seed)  # fmt: skip
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise ConfigError(f"steps must be an integer of at least 2, got {steps!r}")
        if method not in (None, "linear"):
            raise ConfigError(f"in w the path is linear; method {method!r} does not apply")
        options = GANSampleOptions(labels=labels, truncation=truncation)
        self._check_labels(options.labels, steps)
        z = torch.stack([self._end_point(a, "a"), self._end_point(b, "b")]).float()  # (2, D)
        ends = Noise(seed, torch.zeros(2, dtype=torch.int64, device=self.device))
        t = torch.linspace(0, 1, steps, device=self.device)[:, None]  # (S, 1)
        noise = Noise(seed, torch.zeros(steps, dtype=torch.int64, device=self.device))
        with _inference(self):
            w = self.to_w(z, self._labels(ends, labels), truncation)  # (2, w_dim)
            path = torch.lerp(w[:1], w[1:], t)  # (S, w_dim); exact at both ends
            ws = path[:, None].expand(-1, self.num_ws, -1)  # (S, num_ws, w_dim)
            return self.to_output(self.synthesis(ws, noise))


# ----------------------------------------------------------------------------- discriminator
class MinibatchStd(nn.Module):
    """Appends the standard deviation over groups of samples, averaged over the features and
    pixels, as ``num_channels`` constant feature maps. Sample ``i`` is in group ``i mod (B /
    G)`` (as the official code's reshape)."""

    def __init__(self, group_size: int, num_channels: int):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = max(d for d in range(1, min(self.group_size, n) + 1) if n % d == 0)
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)  # (G, n/G, F, C/F, H, W)
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # (n/G, F, C/F, H, W): variance
        y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # (n/G, F)
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # (B, F, H, W)
        return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual block: ``(conv3x3, conv3x3 down) + conv1x1 down`` skip, scaled by 1/sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, activation=True)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, activation=True, down=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) / math.sqrt(2)  # (B, O, H/2, W/2)


class StyleGANDiscriminator(nn.Module):
    """Images ``(B, C, H, W)`` in [-1, 1] (and labels ``(B,)`` when the generator is
    conditional) to logits ``(B,)``."""

    def __init__(self, config: StyleGANDiscriminatorConfig, generator: StyleGANConfig):
        super().__init__()
        s0, k = start_size(generator.image_size)
        sizes = [generator.image_size // 2**i for i in range(k + 1)]  # full side .. s0
        width = [min(config.width * generator.image_size // r, config.channel_max) for r in sizes]
        top = width[-1]
        if top % config.mbstd_channels:
            raise ConfigError(
                f"discriminator: mbstd_channels {config.mbstd_channels} must divide the "
                f"{top} channels at {s0}x{s0}"
            )
        self.from_rgb = EqualConv2d(generator.channels, width[0], 1, activation=True)
        self.blocks = nn.Sequential(*[DiscriminatorBlock(width[i], width[i + 1]) for i in range(k)])
        self.mbstd = MinibatchStd(config.mbstd_group_size, config.mbstd_channels)
        self.conv = EqualConv2d(top + config.mbstd_channels, top, 3, activation=True)
        self.fc = EqualLinear(top * s0 * s0, top, activation=True)
        self.out = EqualLinear(top, 1)
        classes = generator.num_classes
        self.embed = nn.Parameter(torch.randn(classes, top)) if classes is not None else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.blocks(self.from_rgb(x))  # (B, C, s0, s0)
        h = self.fc(self.conv(self.mbstd(h)).flatten(1))  # (B, C)
        out = self.out(h).squeeze(-1)  # (B,)
        if self.embed is not None and labels is not None:  # projection, equalized lr
            out = out + (self.embed[labels] * h).sum(-1) / math.sqrt(h.shape[1])
        return out

"""Gated PixelCNN: van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu 2016,
"Conditional Image Generation with PixelCNN Decoders", arXiv 1606.05328; with the
discretized logistic mixture output of PixelCNN++ (Salimans, Karpathy, Chen & Kingma 2017,
arXiv 1701.05517) as an alternative to the 256-way softmax.

p(x) = prod_p p(x_p | x_<p, y) over the pixels p in raster order (and, within a pixel, its
channels in order), so ``log_prob`` is exact. Two stacks of convolutions see only the past
without a blind spot (the paper's section 2.2, figure 2): the vertical stack, a (k/2 + 1) x k
convolution over the rows above and the current one, whose pre-activation, shifted down one
row, feeds the horizontal stack through a 1 x 1 convolution; the horizontal stack, a
1 x (k/2 + 1) convolution over the current row up to the current pixel (up to the one before
it in the first layer), with a residual connection. Each stack has the gated activation
``tanh(W_f * x + V_f y) * sigmoid(W_g * x + V_g y)`` (eq. 4 and 5), where the class ``y``
enters as a learned per-class bias of every layer's pre-activations (``V^T h`` with ``h``
one-hot). The output network is ReLU, 1 x 1, ReLU, 1 x 1 on the horizontal stack.

Output heads (``head``):

- ``softmax``: 256 logits per channel (van den Oord et al. 2016, arXiv 1601.06759, sec. 5.3).
- ``logistic_mixture``: PixelCNN++'s mixture of K discretized logistics per pixel, the means
  of later channels linear in earlier ones (``zoo_autoregressive.discretized``).

What differs from the papers: for more than one channel, the dependence of a pixel's channel
on its earlier channels (R -> G -> B) is in the output network only: in the softmax head, the
hidden layer of channel c adds a linear function of the pixel's channels before c; in the
mixture head, PixelCNN++'s linear means. The Gated PixelCNN paper masks the feature groups of
every layer instead. Of PixelCNN++ only the output distribution is taken (no downsampling,
dropout or shortcut connections). Grey images (C = 1) are the paper's model exactly.

Sampling draws the pixels in raster order, one network evaluation per pixel (``nfe`` = H x W),
every draw from ``zoo_core.seeding.Noise`` with ``step`` = the pixel's index. It computes only
what the next pixel needs, with the same result as the whole network: the vertical stack
once per row, on the rows of its receptive field above, and the horizontal stack of the
current row, on the columns of its receptive field to the left.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from zoo_autoregressive.discretized import (
    LEVELS,
    categorical,
    mixture_draw,
    mixture_log_prob,
    param_count,
    to_values,
)
from zoo_core.errors import ConfigError
from zoo_core.generator import Example, Generator
from zoo_core.seeding import Noise

logger = logging.getLogger(__name__)

LABEL_STREAM = 1_000_000  # the Noise stream of classes drawn for conditional sampling
LN2 = math.log(2.0)


class PixelCNNConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image_size: int | tuple[int, int] = Field(
        28, description="Side of the square images, or (height, width); each 1..256."
    )
    channels: int = Field(1, ge=1, le=4, description="Image channels C (1: grey, 3: RGB).")
    num_classes: int | None = Field(
        None, ge=2, le=100_000, description="Classes the model is conditioned on (null: none)."
    )
    width: int = Field(64, ge=1, le=1024, description="Channels of each stack (gated units).")
    layers: int = Field(8, ge=1, le=64, description="Gated layers (each with both stacks).")
    kernel_size: int = Field(
        3, ge=3, le=15, description="Odd kernel width k of the layers after the first."
    )
    first_kernel_size: int = Field(7, ge=3, le=15, description="Odd kernel width of layer 1.")
    head: Literal["softmax", "logistic_mixture"] = Field(
        "logistic_mixture",
        description="Output: a 256-way softmax per channel, or PixelCNN++'s discretized "
        "logistic mixture.",
    )
    mixtures: int = Field(5, ge=1, le=100, description="Logistic components (logistic_mixture).")
    head_width: int = Field(
        128, ge=1, le=4096, description="Hidden channels of the 1 x 1 output network."
    )

    @field_validator("image_size")
    @classmethod
    def _size(cls, value: int | tuple[int, int]) -> int | tuple[int, int]:
        sides = (value, value) if isinstance(value, int) else value
        if not all(1 <= s <= 256 for s in sides):
            raise ValueError(f"image sides must be in 1..256, got {value}")
        return value

    @field_validator("kernel_size", "first_kernel_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"kernel sizes must be odd, got {value}")
        return value

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of an image."""
        size = self.image_size
        height, width = (size, size) if isinstance(size, int) else size
        return (self.channels, height, width)


class PixelCNNSampleOptions(BaseModel):
    """Keyword arguments of ``PixelCNN.sample``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: list[int] | int | None = Field(
        None,
        description="Class of each sample, or one int for all (conditional models only); "
        "None draws each sample's class uniformly from the seeded noise.",
    )
    temperature: float = Field(
        1.0,
        ge=0,
        le=10,
        description="softmax: each conditional's logits divided by it; logistic_mixture: "
        "the mixture logits divided and the scales multiplied by it; 0: the most likely value "
        "of each conditional (greedy).",
    )


def gate(t: torch.Tensor) -> torch.Tensor:
    """The gated activation ``tanh(a) * sigmoid(b)`` of ``t = [a, b]`` (eq. 2), halving the
    channels."""
    a, b = t.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def down_shift(t: torch.Tensor) -> torch.Tensor:
    """Row r of the result is row r - 1 of ``t`` (zeros in row 0), ``(B, C, H, W)``."""
    return F.pad(t, (0, 0, 1, 0))[:, :, :-1]


class GatedLayer(nn.Module):
    """One layer of both stacks (the paper's figure 2).

    Args:
        in_channels: channels of the input (C for the first layer, else ``width``).
        width: gated units p of each stack (convolutions give 2p, split into f and g).
        kernel: odd width k: vertical (k/2 + 1) x k, horizontal 1 x (k/2 + 1).
        first: the first layer, whose horizontal convolution excludes the current pixel and
            which has no residual connection.
        num_classes: classes of the per-class biases (None: unconditional).
    """

    def __init__(
        self, in_channels: int, width: int, kernel: int, first: bool, num_classes: int | None
    ):
        super().__init__()
        self.half, self.first = kernel // 2, first
        self.vertical_conv = nn.Conv2d(in_channels, 2 * width, (self.half + 1, kernel))
        self.horizontal_conv = nn.Conv2d(in_channels, 2 * width, (1, self.half + 1))
        self.link = nn.Conv2d(2 * width, 2 * width, 1)
        self.horizontal_out = nn.Conv2d(width, width, 1)
        # V^T h of eq. 4 for a one-hot h: a bias per class, for each stack's 2p pre-activations
        self.embed = nn.Embedding(num_classes, 4 * width) if num_classes else None

    def vertical(self, v: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Pre-activation of the vertical stack ``(B, 2p, R, W)``: row r sees rows
        r - k/2 .. r of ``v`` (rows above the first are zeros)."""
        h = self.half
        out = self.vertical_conv(F.pad(v, (h, h, h, 0)))
        return out if cond is None else out + cond[:, : out.shape[1], None, None]

    def horizontal(
        self, h: torch.Tensor, above: torch.Tensor, cond: torch.Tensor | None
    ) -> torch.Tensor:
        """The horizontal stack's output ``(B, p, R, W')``.

        Args:
            h: its input ``(B, in, R, W')``: column j sees columns j - k/2 .. j (the first
                layer: j - k/2 - 1 .. j - 1: mask A).
            above: the vertical pre-activation shifted down one row, ``(B, 2p, R, W')``.
            cond: the layer's class biases ``(B, 4p)`` or None.
        """
        shift = self.half + 1 if self.first else self.half  # the first: right one more column
        inp = F.pad(h, (shift, 0))[..., : h.shape[-1] + self.half]  # (B, in, R, W' + k/2)
        pre = self.horizontal_conv(inp) + self.link(above)
        if cond is not None:
            pre = pre + cond[:, pre.shape[1] :, None, None]
        out = self.horizontal_out(gate(pre))
        return out if self.first else h + out


class SoftmaxHead(nn.Module):
    """256 logits per channel from the features ``h``: ReLU, 1 x 1 (``hidden``), ReLU, 1 x 1.

    For C > 1 the hidden layer of channel c adds ``context[c] @ x_p[:c]``, the current
    pixel's channels before c, so channel c's distribution is conditioned on them.
    """

    def __init__(self, features: int, hidden: int, channels: int):
        super().__init__()
        self.channels, self.hidden_width = channels, hidden
        self.hidden = nn.Conv2d(features, hidden, 1)
        self.out = nn.Conv2d(channels * hidden, channels * LEVELS, 1, groups=channels)
        if channels > 1:
            # (C, hidden, C), used below its diagonal only: channel c sees channels < c
            self.context = nn.Parameter(torch.randn(channels, hidden, channels) / channels)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, C, 256, H, W)`` from features ``(B, F, H, W)`` and the values
        ``x`` ``(B, C, H, W)`` in [-1, 1] (for the channels before each)."""
        a = self.hidden(torch.relu(h))[:, None]  # (B, 1, D, H, W)
        a = a.expand(-1, self.channels, -1, -1, -1)
        if self.channels > 1:
            mask = torch.ones(self.channels, self.channels, device=h.device).tril(-1)
            weight = self.context * mask[:, None, :]  # (C, D, C): strictly lower in (c, c')
            a = a + torch.einsum("cdk,bkhw->bcdhw", weight, x.float())
        logits = self.out(torch.relu(a).flatten(1, 2))  # (B, C * 256, H, W)
        return logits.unflatten(1, (self.channels, LEVELS))

    def log_prob(self, params: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """log P(x_p) of every pixel, ``(B, H, W)``, from the logits and the levels."""
        log_p = torch.log_softmax(params.float(), 2)  # (B, C, 256, H, W)
        return log_p.gather(2, levels[:, :, None]).squeeze(2).sum(1)

    def draw(self, h: torch.Tensor, u: torch.Tensor, temperature: float) -> torch.Tensor:
        """Levels ``(B, C)`` of one pixel from its features ``(B, F, 1, 1)``, channel by
        channel, each by inverse CDF of ``u[:, c]``."""
        levels = torch.zeros(h.shape[0], self.channels, dtype=torch.int64, device=h.device)
        for c in range(self.channels):
            x = to_values(levels)[:, :, None, None]  # channels >= c are not seen by channel c
            logits = self(h, x)[:, c, :, 0, 0]  # (B, 256)
            levels[:, c] = categorical(logits, u[:, c], temperature)
        return levels


class MixtureHead(nn.Module):
    """PixelCNN++'s discretized logistic mixture from the features ``h``: ReLU, 1 x 1, ReLU,
    1 x 1 to the mixture's parameters (``zoo_autoregressive.discretized``)."""

    def __init__(self, features: int, hidden: int, channels: int, components: int):
        super().__init__()
        self.channels, self.components = channels, components
        self.hidden = nn.Conv2d(features, hidden, 1)
        self.out = nn.Conv2d(hidden, param_count(channels, components), 1)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Parameters ``(B, P, H, W)`` (``x`` is not needed: the channels' dependence is in
        the mixture)."""
        return self.out(torch.relu(self.hidden(torch.relu(h))))

    def log_prob(self, params: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        return mixture_log_prob(params, to_values(levels), self.channels, self.components)

    def draw(self, h: torch.Tensor, u: torch.Tensor, temperature: float) -> torch.Tensor:
        params = self(h, None)[:, :, 0, 0]  # (B, P)
        return mixture_draw(params, u, self.channels, self.components, temperature)


@contextlib.contextmanager
def _eval(model: nn.Module):
    """Eval mode for the duration, restored after (the network has no train-only layers;
    this keeps any subclass's honest)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class PixelCNN(Generator):
    """Gated PixelCNN over 8-bit images ``(N, C, H, W)`` in [0, 1].

    ``forward(x, labels)`` gives the output head's parameters of every pixel's conditional:
    logits ``(N, C, 256, H, W)`` (softmax) or mixture parameters ``(N, P, H, W)``.
    ``log_prob(x, labels=None)`` is exact, in nats per image; for a conditional model without
    labels it is the likelihood of the class mixture ``(1/K) sum_y p(x | y)`` (the distribution
    ``sample(labels=None)`` draws from). Images are read as the nearest of the 256 levels.

    ``sample(n, seed=..., labels=..., temperature=...)``: see ``PixelCNNSampleOptions``.
    ``inpaint(x, mask)`` completes images whose observed pixels come first in raster order
    (e.g. the top half), exactly from p(missing | observed).
    """

    architecture: ClassVar[str] = "pixelcnn"
    example: ClassVar[Example] = Example(
        config={"image_size": 8, "width": 8, "layers": 2, "head_width": 16, "mixtures": 2},
        dataset="digits",
    )
    Config: ClassVar[type[BaseModel]] = PixelCNNConfig
    SampleOptions: ClassVar[type[BaseModel]] = PixelCNNSampleOptions
    capabilities: ClassVar[frozenset[str]] = frozenset({"sample", "log_prob", "inpaint"})
    modality: ClassVar[str] = "image"
    default_batch_size: ClassVar[int] = 64

    def __init__(self, config: PixelCNNConfig):
        super().__init__(config)
        c = config
        if c.num_classes is not None:  # declared per instance, as the capability says
            self.capabilities = type(self).capabilities | {"conditional"}
        kernels = [c.first_kernel_size] + [c.kernel_size] * (c.layers - 1)
        self.layers = nn.ModuleList(
            GatedLayer(c.channels if i == 0 else c.width, c.width, k, i == 0, c.num_classes)
            for i, k in enumerate(kernels)
        )
        if c.head == "softmax":
            self.head = SoftmaxHead(c.width, c.head_width, c.channels)
        else:
            self.head = MixtureHead(c.width, c.head_width, c.channels, c.mixtures)
        # The receptive field: the output at (i, j) depends on rows i - reach .. i only, and in
        # row i on columns j - reach .. j - 1 only: what the cached sampler computes.
        self.reach = sum(k // 2 for k in kernels) + 1

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.shape

    # ----------------------------------------------------------------- the network
    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The horizontal stack's output ``(B, width, H, W)`` for values ``x`` ``(B, C, H, W)``
        in [-1, 1]; at pixel p it depends on the pixels before p only."""
        conds = self._conditions(labels)
        v = h = x
        for layer, cond in zip(self.layers, conds, strict=True):
            v_pre = layer.vertical(v, cond)  # (B, 2p, H, W): row r sees rows <= r
            h = layer.horizontal(h, down_shift(v_pre), cond)  # sees the rows < r through it
            v = gate(v_pre)
        return h

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The output head's parameters for every pixel's conditional.

        Args:
            x: values ``(B, C, H, W)`` in [-1, 1] (``to_values`` of the levels).
            labels: ``(B,)`` classes of a conditional model, else None.

        Returns:
            softmax: logits ``(B, C, 256, H, W)``; logistic_mixture: ``(B, P, H, W)``.
        """
        return self.head(self.features(x, labels), x)

    def _conditions(self, labels: torch.Tensor | None) -> list[torch.Tensor | None]:
        if self.config.num_classes is None:
            return [None] * len(self.layers)
        if labels is None:
            raise ConfigError(f"{self.name} is class-conditional: it needs labels")
        return [layer.embed(labels) for layer in self.layers]

    # ----------------------------------------------------------------- likelihood
    def log_prob_pixels(self, x: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """log p(x_p | x_<p, y) of every pixel in nats, ``(N, H, W)`` (differentiable: the
        training objective). A conditional model needs ``labels`` here."""
        levels = self.levels(x)
        labels = self._label_tensor(labels, x.shape[0])
        if labels is None and self.config.num_classes is not None:
            raise ConfigError(f"{self.name}.log_prob_pixels() needs labels (conditional model)")
        return self.head.log_prob(self(to_values(levels), labels), levels)

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """Exact log-likelihood of each image in nats, ``(N,)``.

        Args:
            x: images ``(N, C, H, W)`` in [0, 1], read as the nearest of the 256 levels.
            labels: classes of a conditional model (an int, a list of N, or a tensor);
                None: the class mixture ``log (1/K) sum_y p(x | y)`` (K passes).

        Raises:
            ConfigError: images of the wrong shape or range; labels on an unconditional
                model, of the wrong length or out of range.
        """
        with _eval(self):
            classes = self.config.num_classes
            if labels is not None or classes is None:
                return self.log_prob_pixels(x, labels).sum((1, 2))
            levels = self.levels(x)
            values = to_values(levels)
            per_class = []
            for y in range(classes):
                y_batch = torch.full((x.shape[0],), y, device=self.device)
                per_class.append(self.head.log_prob(self(values, y_batch), levels).sum((1, 2)))
            return torch.logsumexp(torch.stack(per_class), 0) - math.log(classes)

    def bits_per_dim(self, x: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """Negative log-likelihood in bits per dimension (per channel value), ``(N,)``."""
        return -self.log_prob(x, labels) / (math.prod(self.image_shape) * LN2)

    # ----------------------------------------------------------------- checks
    def levels(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        """Images ``x`` ``(N, C, H, W)`` in [0, 1] to their levels 0..255 (int64) on the
        model's device.

        Raises:
            ConfigError: not a tensor, another shape, values outside [0, 1] or not finite.
        """
        if not isinstance(x, torch.Tensor):
            raise ConfigError(f"{name} must be a tensor of images, got {type(x).__name__}")
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ConfigError(
                f"{name} has shape {tuple(x.shape)}; {self.name} takes images "
                f"(N, {', '.join(map(str, self.image_shape))})"
            )
        x = x.to(self.device, torch.float32)
        if not bool(((x >= 0) & (x <= 1)).all()):
            raise ConfigError(f"{name} must hold pixel values in [0, 1] (the zoo's image form)")
        return torch.round(x * (LEVELS - 1)).long()

    def _check_labels(self, labels: Any, n: int) -> None:
        if labels is None:
            return
        classes = self.config.num_classes
        if classes is None:
            raise self.capability_error("conditional", "labels do not apply")
        if isinstance(labels, torch.Tensor):
            labels = labels.tolist() if labels.dim() else int(labels)
        if isinstance(labels, bool) or not isinstance(labels, int | list | tuple):
            raise ConfigError(f"labels must be an int or a list of ints, got {labels!r}")
        values = [labels] if isinstance(labels, int) else list(labels)
        if not isinstance(labels, int) and len(values) != n:
            raise ConfigError(f"labels has {len(values)} entries for {n} images; give {n}")
        if not all(isinstance(y, int) and not isinstance(y, bool) for y in values):
            raise ConfigError(f"labels must be integers, got {values[:5]}")
        bad = [y for y in values if not 0 <= y < classes]
        if bad:
            raise ConfigError(f"labels {bad[:5]} out of range: classes are 0..{classes - 1}")

    def _label_tensor(self, labels: Any, n: int) -> torch.Tensor | None:
        """``labels`` (int, list or tensor) checked, as ``(n,)`` int64, or None."""
        self._check_labels(labels, n)
        if labels is None:
            return None
        if isinstance(labels, int):
            return torch.full((n,), labels, dtype=torch.int64, device=self.device)
        return torch.as_tensor(labels, dtype=torch.int64).to(self.device).reshape(n)

    # ----------------------------------------------------------------- sampling
    def nfe(self, options: BaseModel) -> int:
        """One network evaluation per pixel: H x W."""
        return self.image_shape[1] * self.image_shape[2]

    def check_call(self, n: int, options: PixelCNNSampleOptions) -> None:
        self._check_labels(options.labels, n)

    def sample_batch(self, noise: Noise, options: PixelCNNSampleOptions) -> torch.Tensor:
        labels = self._sample_labels(noise, options.labels)
        with _eval(self):
            levels = self._generate(noise, labels, options.temperature)
        return levels.float() / (LEVELS - 1)

    def _sample_labels(self, noise: Noise, labels: list[int] | int | None):
        if self.config.num_classes is None:
            return None
        if labels is None:
            # Each sample's class uniformly from the noise: the class mixture of ``log_prob``.
            return noise.randint(self.config.num_classes, stream=LABEL_STREAM).to(self.device)
        if isinstance(labels, int):
            return torch.full((len(noise),), labels, device=self.device)
        return torch.tensor(labels, device=self.device)[noise.positions.to(self.device)]

    def _generate(
        self,
        noise: Noise,
        labels: torch.Tensor | None,
        temperature: float,
        given: torch.Tensor | None = None,
        observed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Levels ``(B, C, H, W)`` drawn pixel by pixel in raster order; where ``observed``
        ``(B, H, W)`` is True the level of ``given`` is kept instead of a draw."""
        c, height, width = self.image_shape
        b = len(noise)
        levels = torch.zeros(b, c, height, width, dtype=torch.int64, device=self.device)
        if given is not None:
            levels = given.clone()
        values = to_values(levels)  # (B, C, H, W) in [-1, 1]
        conds = self._conditions(labels)
        for i in range(height):
            if observed is not None and bool(observed[:, i].all()):
                continue
            above = self._above(values, i, conds)
            for j in range(width):
                keep = None if observed is None else observed[:, i, j]
                if keep is not None and bool(keep.all()):
                    continue
                u = noise.rand(c + 1, step=i * width + j, dtype=torch.float64).to(self.device)
                features = self._pixel_features(values, i, j, above, conds)  # (B, p, 1, 1)
                drawn = self.head.draw(features, u, temperature)  # (B, C)
                if keep is not None:
                    drawn = torch.where(keep[:, None], levels[:, :, i, j], drawn)
                levels[:, :, i, j] = drawn
                values[:, :, i, j] = to_values(drawn)
        return levels

    def _above(
        self, values: torch.Tensor, i: int, conds: list[torch.Tensor | None]
    ) -> list[torch.Tensor]:
        """Each layer's vertical pre-activation at row i - 1, ``(B, 2p, 1, W)`` (zeros for
        row 0): what ``down_shift`` gives row i. Computed on the rows the receptive field
        reaches (the result equals the whole network's)."""
        b, width = values.shape[0], values.shape[-1]
        if i == 0:
            zeros = values.new_zeros(b, 2 * self.config.width, 1, width)
            return [zeros] * len(self.layers)
        v = values[:, :, max(0, i - self.reach) : i]
        out = []
        for layer, cond in zip(self.layers, conds, strict=True):
            v_pre = layer.vertical(v, cond)
            out.append(v_pre[:, :, -1:])
            v = gate(v_pre)
        return out

    def _pixel_features(
        self,
        values: torch.Tensor,
        i: int,
        j: int,
        above: list[torch.Tensor],
        conds: list[torch.Tensor | None],
    ) -> torch.Tensor:
        """The features ``(B, width, 1, 1)`` at pixel (i, j): the horizontal stack on row i,
        on the columns its receptive field reaches (the result equals the whole network's)."""
        left = max(0, j - self.reach)
        h = values[:, :, i : i + 1, left : j + 1]
        for layer, a, cond in zip(self.layers, above, conds, strict=True):
            h = layer.horizontal(h, a[..., left : j + 1], cond)
        return h[..., -1:]

    # ----------------------------------------------------------------- inpainting
    @torch.no_grad()
    def inpaint(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        *,
        seed: int = 0,
        labels: Any = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Complete images from their first pixels: draw the pixels where ``mask`` is False
        from p(missing | observed), exactly, in raster order.

        The observed pixels of each image must come before every missing one in raster order
        (e.g. the top rows, then part of a row). A conditional model without ``labels`` first
        draws each image's class from its posterior p(y | observed) (uniform prior): the
        observed prefix's likelihood is exact.

        Args:
            x: images ``(N, C, H, W)`` in [0, 1]; the missing pixels' values are ignored.
            mask: bool, True where a pixel is observed; ``(H, W)``, ``(N, 1, H, W)`` or any
                shape that broadcasts to ``(N, 1, H, W)`` (whole pixels, all channels).
            seed: image ``i``'s draws depend on ``(seed, i)`` only.
            labels: classes of a conditional model (an int or a list of N).
            temperature: as in ``sample``.

        Returns:
            ``x`` with the missing pixels drawn; the observed ones unchanged (as levels).

        Raises:
            ConfigError: a mask that does not broadcast, or whose observed pixels do not come
                first; an image with every pixel observed or none; bad labels or images.
        """
        levels = self.levels(x)
        n = x.shape[0]
        observed = self._check_mask(mask, n)  # (N, H, W)
        options = self.check_sample_options({"temperature": temperature})
        noise = Noise.for_range(seed, 0, n, self.device)
        label_tensor = self._label_tensor(labels, n)
        with _eval(self):
            if label_tensor is None and self.config.num_classes is not None:
                label_tensor = self._posterior_labels(levels, observed, noise)
            out = self._generate(noise, label_tensor, options.temperature, levels, observed)
        return torch.where(observed[:, None], x.to(self.device), out.float() / (LEVELS - 1))

    def _check_mask(self, mask: torch.Tensor, n: int) -> torch.Tensor:
        _, height, width = self.image_shape
        if not isinstance(mask, torch.Tensor):
            raise ConfigError(f"inpaint(): mask must be a bool tensor, got {type(mask).__name__}")
        try:
            observed = torch.broadcast_to(mask.to(self.device).bool(), (n, 1, height, width))
        except RuntimeError:
            raise ConfigError(
                f"inpaint(): mask of shape {tuple(mask.shape)} does not match the images: give "
                f"(H, W) = ({height}, {width}) or (N, 1, H, W)"
            ) from None
        flat = observed.reshape(n, -1)
        for i in range(n):
            if bool(flat[i].all()):
                raise ConfigError(f"inpaint(): image {i} has every pixel observed: nothing to fill")
            if not bool(flat[i].any()):
                raise ConfigError(
                    f"inpaint(): image {i} has no observed pixel: nothing to condition on "
                    f"(that is sample())"
                )
        if bool((flat[:, 1:] & ~flat[:, :-1]).any()):
            raise ConfigError(
                "inpaint(): the observed pixels must come before every missing one in raster "
                "order (e.g. the top half): pixelcnn completes images in the order it draws them"
            )
        return observed[:, 0]

    def _posterior_labels(
        self, levels: torch.Tensor, observed: torch.Tensor, noise: Noise
    ) -> torch.Tensor:
        """A class per image from p(y | observed prefix) under a uniform prior."""
        values = to_values(levels)
        log_like = []
        for y in range(self.config.num_classes):
            y_batch = torch.full((levels.shape[0],), y, device=self.device)
            pixels = self.head.log_prob(self(values, y_batch), levels)  # (N, H, W)
            log_like.append((pixels * observed).sum((1, 2)))
        u = noise.rand(stream=LABEL_STREAM, dtype=torch.float64)
        return categorical(torch.stack(log_like, 1), u.to(self.device), 1.0)

"""WaveNet (van den Oord et al. 2016, arXiv 1609.03499): a stack of dilated causal
convolutions with gated units and residual and skip paths, predicting each sample from all
before it, with the fast generation of Paine et al. 2016 (arXiv 1611.09482).

Two architectures share the network:

- ``wavenet`` (audio, ``(N, T)`` in [-1, 1]): the paper's 256-way softmax over μ-law
  companded 8-bit samples (section 2.2), optional global conditioning on a class (2.5);
- ``wavenet-series`` (time series, ``(N, T, D)``): a continuous head, a Gaussian per step and
  channel on the series standardized by the training data's mean and standard deviation,
  and ``forecast(context, horizon, n_paths)``.

Generation keeps, for every layer, a queue of its last inputs at that layer's dilation (the
"fast WaveNet" of Paine et al.), so each new sample costs one step per layer instead of a
pass over the whole receptive field; ``sample(..., fast=False)`` recomputes the network over
everything generated so far, and both give the same samples for the same seed.

Differences from the paper: the input of step t is sample t − 1 through a causal convolution
of width 2 (the first step sees zeros, the padding of every layer); the output network is
ReLU → 1×1 → ReLU → 1×1 on the summed skips, as in the paper's figure 4.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from zoo_core.errors import ConfigError
from zoo_core.generator import Example, Generator
from zoo_core.seeding import Noise

MU = 255  # μ of the μ-law: 256 levels
LABEL_STREAM = 1_000_000  # the Noise stream of classes drawn for conditional sampling


class WaveNetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    layers: int = Field(10, ge=1, le=64, description="Dilated layers per stack.")
    stacks: int = Field(
        1, ge=1, le=16, description="Stacks; dilations 1, 2, ..., 2^(layers-1) each."
    )
    kernel_size: int = Field(2, ge=2, le=8, description="Width of each dilated convolution.")
    residual_channels: int = Field(32, ge=1, le=1024, description="Channels of the residual path.")
    gate_channels: int = Field(32, ge=1, le=1024, description="Channels of each gated unit.")
    skip_channels: int = Field(64, ge=1, le=2048, description="Channels of the skip path.")
    num_classes: int | None = Field(None, ge=1, le=100000, description="Global conditioning.")
    channels: int = Field(1, ge=1, le=64, description="Series channels D (wavenet-series).")
    sample_rate: int = Field(16000, ge=1, le=384000, description="Audio samples per second.")
    length: int = Field(16000, ge=1, le=10_000_000, description="Samples drawn by default.")


class WaveNetSampleOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    length: int | None = Field(None, ge=1, le=10_000_000, description="Steps to draw.")
    labels: int | list[int] | None = Field(None, description="Class(es) of a conditional model.")
    temperature: float = Field(1.0, ge=0, le=10, description="0: the most likely value.")
    fast: bool = Field(True, description="Queued generation (Paine et al.); False: naive.")


def mu_law_encode(x: torch.Tensor) -> torch.Tensor:
    """Audio in [-1, 1] -> 256 μ-law levels (section 2.2: f(x) = sign(x) ln(1 + μ|x|) /
    ln(1 + μ), quantized)."""
    y = torch.sign(x) * torch.log1p(MU * x.abs()) / math.log1p(MU)
    return ((y + 1) / 2 * MU + 0.5).floor().clamp(0, MU).long()


def mu_law_decode(levels: torch.Tensor) -> torch.Tensor:
    """256 μ-law levels -> audio in [-1, 1] (the inverse of the companding at each level)."""
    y = levels.float() / MU * 2 - 1
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(MU)) / MU


class GatedBlock(nn.Module):
    """z = tanh(W_f * x + V_f h) ⊙ σ(W_g * x + V_g h) (eq. 2 and 3 of the paper); a 1×1
    convolution of z to the residual path (added to x) and one to the skip path. The last
    block has no residual output: nothing reads it."""

    def __init__(self, channels, gate, skip, kernel, dilation, num_classes, residual=True):
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.conv = nn.Conv1d(channels, 2 * gate, kernel, dilation=dilation)
        self.cond = nn.Linear(num_classes, 2 * gate, bias=False) if num_classes else None
        self.residual = nn.Conv1d(gate, channels, 1) if residual else None
        self.skip = nn.Conv1d(gate, skip, 1)

    @property
    def reach(self) -> int:
        return (self.kernel - 1) * self.dilation

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None):
        y = self.conv(F.pad(x, (self.reach, 0)))
        return self._out(x, y, cond)

    def _out(self, x, y, cond):
        if self.cond is not None:
            y = y + self.cond(cond).unsqueeze(-1)
        f, g = y.chunk(2, 1)
        z = torch.tanh(f) * torch.sigmoid(g)
        out = x if self.residual is None else x + self.residual(z)
        return out, self.skip(z)

    def step(self, x: torch.Tensor, history: torch.Tensor, cond):
        """One step: ``x`` ``(B, R)`` the current input, ``history`` ``(B, R, reach)`` the
        inputs at t − reach, ..., t − 1; returns (the next layer's input, the skip)."""
        window = torch.cat([history[:, :, :: self.dilation], x[:, :, None]], 2)  # (B, R, k)
        y = F.conv1d(window, self.conv.weight, self.conv.bias)  # (B, 2G, 1)
        out, skip = self._out(x[:, :, None], y, cond)
        return out[:, :, 0], skip[:, :, 0]


class FastState:
    """The queues of fast generation (Paine et al. 2016, figure 2): per layer, a ring buffer of
    its last (kernel_size − 1) × dilation inputs, so that a step costs one column of every
    layer. Each layer's convolution taps are matrices here, so that a step is a few
    matrix-vector products per layer."""

    def __init__(self, model: WaveNet, batch: int, labels: torch.Tensor | None):
        self.model, self.batch, self.t = model, batch, 0
        device, r = model.device, model.config.residual_channels
        cond = model._embed(labels)
        self.last_input = torch.zeros(batch, model.input_channels, device=device)
        start = model.start.weight  # (R, C_in, 2)
        self.start = (start[:, :, 0].T, start[:, :, 1].T, model.start.bias)
        self.layers = []
        for block in model.blocks:
            weight = block.conv.weight  # (2G, R, k): tap k − 1 is the current input
            taps = [weight[:, :, j].T for j in range(block.kernel)]  # (R, 2G) each
            bias = block.conv.bias
            if block.cond is not None:
                bias = bias + block.cond(cond)  # (B, 2G): constant over time
            residual = None
            if block.residual is not None:
                residual = (block.residual.weight[:, :, 0].T, block.residual.bias)
            skip = (block.skip.weight[:, :, 0].T, block.skip.bias)
            ring = torch.zeros(block.reach, batch, r, device=device)
            self.layers.append((block.dilation, taps, bias, residual, skip, ring))
        head1, head2 = model.head[1], model.head[3]
        self.head = (head1.weight[:, :, 0].T, head1.bias, head2.weight[:, :, 0].T, head2.bias)

    def step(self, previous: torch.Tensor | None) -> torch.Tensor:
        """Feed the value of step t − 1 (None at t = 0: zeros) and return step t's output
        parameters ``(B, C_out)``."""
        model, t = self.model, self.t
        current = (
            torch.zeros(self.batch, model.input_channels, device=model.device)
            if previous is None
            else model.encode_inputs(previous[:, None])[:, :, 0]
        )
        w0, w1, b = self.start
        h = torch.addmm(b, self.last_input, w0).addmm_(current, w1)  # the width-2 start conv
        self.last_input = current
        skips = None
        for dilation, taps, bias, residual, skip, ring in self.layers:
            y = torch.addmm(bias, h, taps[-1]) if bias.dim() == 1 else bias + h @ taps[-1]
            size = ring.shape[0]
            for j in range(1, len(taps)):  # x at t − j·dilation
                y.addmm_(ring[(t - j * dilation) % size], taps[-1 - j])
            ring[t % size] = h  # after the reads: that slot held x at t − size
            f, g = y.chunk(2, 1)
            z = torch.tanh(f).mul_(torch.sigmoid(g))
            s = torch.addmm(skip[1], z, skip[0])
            skips = s if skips is None else skips.add_(s)
            if residual is not None:
                h = torch.addmm(h, z, residual[0]).add_(residual[1])
        self.t += 1
        w1, b1, w2, b2 = self.head
        return torch.addmm(b2, torch.relu(torch.addmm(b1, torch.relu(skips), w1)), w2)


class _inference:
    def __init__(self, module):
        self.module = module

    def __enter__(self):
        self.was = self.module.training
        self.module.eval()

    def __exit__(self, *exc):
        self.module.train(self.was)


class WaveNet(Generator):
    """WaveNet over μ-law audio ``(N, T)`` in [-1, 1] (``sample_rate`` on the config).

    ``log_prob(x)`` is exact over the 256 μ-law levels (nats per clip; x is quantized to
    its level first); ``bits_per_dim`` is bits per sample.
    """

    architecture: ClassVar[str] = "wavenet"
    example: ClassVar[Example] = Example(
        config={"layers": 3, "stacks": 1, "residual_channels": 8, "gate_channels": 8,
                "skip_channels": 16, "length": 24},
        trainer={"window": 16, "stride": 4},
    )  # fmt: skip
    Config: ClassVar[type[BaseModel]] = WaveNetConfig
    SampleOptions: ClassVar[type[BaseModel]] = WaveNetSampleOptions
    capabilities: ClassVar[frozenset[str]] = frozenset({"sample", "log_prob"})
    modality: ClassVar[str] = "audio"
    default_batch_size: ClassVar[int] = 16

    def __init__(self, config: WaveNetConfig):
        super().__init__(config)
        c = config
        self.sample_rate = c.sample_rate
        self.input_channels = self._input_channels()
        self.start = nn.Conv1d(self.input_channels, c.residual_channels, 2)
        self.dilations = [2**i for _ in range(c.stacks) for i in range(c.layers)]
        last = len(self.dilations) - 1
        self.blocks = nn.ModuleList(
            GatedBlock(
                c.residual_channels,
                c.gate_channels,
                c.skip_channels,
                c.kernel_size,
                d,
                c.num_classes,
                residual=i < last,
            )  # fmt: skip
            for i, d in enumerate(self.dilations)
        )
        if c.num_classes is not None:  # declared per instance, as the capability says
            self.capabilities = type(self).capabilities | {"conditional"}
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(c.skip_channels, c.skip_channels, 1),
            nn.ReLU(),
            nn.Conv1d(c.skip_channels, self._output_channels(), 1),
        )

    def _input_channels(self) -> int:
        return MU + 1

    def _output_channels(self) -> int:
        return MU + 1

    @property
    def receptive_field(self) -> int:
        """Past samples a prediction sees: the start convolution's 2 plus each layer's
        reach, (kernel_size − 1) × dilation."""
        return 2 + (self.config.kernel_size - 1) * sum(self.dilations)

    # ----------------------------------------------------------------- the network
    def encode_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Network inputs ``(N, C_in, T)`` of values ``x`` (levels ``(N, T)`` for audio)."""
        return F.one_hot(x, MU + 1).transpose(1, 2).float()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Output parameters at every step, ``(N, C_out, T)``: step t predicts x_t from
        x_<t (the inputs are shifted right by one, the first step sees zeros)."""
        h = self.encode_inputs(x)
        h = F.pad(h, (2, -1))  # shift right by one, and pad for the width-2 start conv
        h = self.start(h)
        skips = 0
        cond = self._embed(labels)
        for block in self.blocks:
            h, skip = block(h, cond)
            skips = skips + skip
        return self.head(skips)

    def _embed(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        if self.config.num_classes is None:
            return None
        return F.one_hot(labels, self.config.num_classes).float()

    # ----------------------------------------------------------------- likelihood
    def step_log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x_t | x_<t) of every step, ``(N, T)`` (for the series model ``(N, T)``
        summed over channels)."""
        return -F.cross_entropy(params.float(), x, reduction="none")

    def to_values(self, x: torch.Tensor) -> torch.Tensor:
        """Data in the canonical form -> the values the network models (μ-law levels)."""
        return mu_law_encode(x)

    def from_values(self, v: torch.Tensor) -> torch.Tensor:
        return mu_law_decode(v)

    def check_data(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ConfigError(f"{self.name} takes audio (N, T) in [-1, 1], got {shape}")
        if x.numel() and (x.min() < -1 or x.max() > 1):
            raise ConfigError(f"{self.name}: audio samples must lie in [-1, 1]")
        return x.to(self.device)

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """The exact log-likelihood of each sequence in nats, ``(N,)``: Σ_t log p(x_t | x_<t)
        (audio: of its μ-law levels)."""
        x = self.check_data(x)
        values = self.to_values(x)
        labels = self._labels_tensor(labels, x.shape[0])
        params = self(values, labels)
        return self.step_log_prob(params, values).sum(1)

    def _labels_tensor(self, labels: Any, n: int, noise: Noise | None = None):
        classes = self.config.num_classes
        if classes is None:
            if labels is not None:
                raise self.capability_error("conditional", "labels do not apply")
            return None
        if labels is None:
            if noise is None:
                raise ConfigError(f"{self.name} is conditional: give labels (0..{classes - 1})")
            return noise.randint(classes, 1, stream=LABEL_STREAM)[:, 0].to(self.device)
        values = torch.as_tensor([labels] * n if isinstance(labels, int) else labels)
        if values.dim() != 1 or len(values) != n:
            raise ConfigError(f"labels must be one class or {n} of them, got {len(values)}")
        if values.min() < 0 or values.max() >= classes:
            raise ConfigError(f"labels must lie in 0..{classes - 1}")
        return values.to(self.device)

    # ----------------------------------------------------------------- sampling
    def check_call(self, n: int, options: WaveNetSampleOptions) -> None:
        if isinstance(options.labels, list):
            self._labels_tensor(options.labels, n)
        elif options.labels is not None:
            self._labels_tensor(options.labels, 1)

    def nfe(self, options: BaseModel) -> int:
        return options.length or self.config.length

    def sample_batch(self, noise: Noise, options: WaveNetSampleOptions) -> torch.Tensor:
        labels = options.labels
        if isinstance(labels, list):
            labels = [labels[int(i)] for i in noise.positions]
        labels = self._labels_tensor(labels, len(noise), noise)
        length = options.length or self.config.length
        with _inference(self):
            values = self.generate(noise, length, labels, options.temperature, options.fast)
        return self.from_values(values)

    def generate(
        self,
        noise: Noise,
        length: int,
        labels: torch.Tensor | None = None,
        temperature: float = 1.0,
        fast: bool = True,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draw ``length`` values after ``context`` (network values, or None), step t of
        sample i from ``noise`` at step t; returns the drawn values only."""
        if not fast:
            return self._generate_naive(noise, length, labels, temperature, context)
        state = FastState(self, len(noise), labels)
        previous = None
        if context is not None:
            for t in range(context.shape[1]):
                state.step(previous)
                previous = context[:, t]
        drawn = []
        for t in range(length):
            params = state.step(previous)  # (B, C_out)
            previous = self.draw(params, noise, t, temperature)
            drawn.append(previous)
        return torch.stack(drawn, 1)

    def _generate_naive(self, noise, length, labels, temperature, context) -> torch.Tensor:
        values = context if context is not None else self._empty(len(noise))
        start = values.shape[1]
        for t in range(length):
            padded = torch.cat([values, self._blank(values)], 1)  # the step to predict
            params = self(padded, labels)[:, :, -1]
            values = torch.cat([values, self.draw(params, noise, t, temperature)[:, None]], 1)
        return values[:, start:]

    def _empty(self, n: int) -> torch.Tensor:
        return torch.zeros(n, 0, dtype=torch.int64, device=self.device)

    def _blank(self, values: torch.Tensor) -> torch.Tensor:
        """One step of any value, appended for the network to predict (it sees only the
        steps before it)."""
        return values.new_zeros(values.shape[0], 1, *values.shape[2:])

    def draw(self, params: torch.Tensor, noise: Noise, t: int, temperature: float):
        """One value per sample from the output ``params`` ``(B, C_out)`` at step t."""
        if temperature == 0:
            return params.argmax(1)
        probs = torch.softmax(params.double() / temperature, 1)
        return noise.categorical(probs.cpu(), step=t).to(params.device)


class WaveNetSeries(WaveNet):
    """WaveNet over time series ``(N, T, D)``: a Gaussian per step and channel (mean and
    log-scale) on the series standardized by ``shift`` and ``scale``, buffers that the
    trainer sets from the training data. ``log_prob`` is the exact log-density in data units
    (nats per series); ``forecast`` draws sample paths after a context.
    """

    architecture: ClassVar[str] = "wavenet-series"
    example: ClassVar[Example] = Example(
        config={"layers": 3, "stacks": 1, "residual_channels": 8, "gate_channels": 8,
                "skip_channels": 16, "length": 24},
        dataset="sunspots",
    )  # fmt: skip
    modality: ClassVar[str] = "sequence"
    default_batch_size: ClassVar[int] = 64

    def __init__(self, config: WaveNetConfig):
        super().__init__(config)
        self.register_buffer("shift", torch.zeros(config.channels))
        self.register_buffer("scale", torch.ones(config.channels))

    def _input_channels(self) -> int:
        return self.config.channels

    def _output_channels(self) -> int:
        return 2 * self.config.channels

    def encode_inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).float()

    def step_log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mean, log_scale = params.float().chunk(2, 1)  # (N, D, T) each
        z = (x.transpose(1, 2) - mean) * torch.exp(-log_scale)
        log_density = -0.5 * z.square() - log_scale - 0.5 * math.log(2 * math.pi)
        return (log_density - torch.log(self.scale)[:, None]).sum(1)  # data units

    def to_values(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.shift) / self.scale

    def from_values(self, v: torch.Tensor) -> torch.Tensor:
        return v * self.scale + self.shift

    def check_data(self, x: torch.Tensor) -> torch.Tensor:
        d = self.config.channels
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[2] != d:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ConfigError(f"{self.name} takes series (N, T, {d}), got {shape}")
        if not torch.isfinite(x).all():
            raise ConfigError(f"{self.name}: the series holds a value that is not finite")
        return x.to(self.device)

    def _empty(self, n: int) -> torch.Tensor:
        return torch.zeros(n, 0, self.config.channels, device=self.device)

    def draw(self, params: torch.Tensor, noise: Noise, t: int, temperature: float):
        mean, log_scale = params.float().chunk(2, 1)  # (B, D) each
        if temperature == 0:
            return mean
        eps = noise.randn(self.config.channels, step=t).to(params.device)
        return mean + temperature * torch.exp(log_scale) * eps

    @torch.no_grad()
    def forecast(
        self,
        context: torch.Tensor,
        horizon: int,
        n_paths: int = 100,
        *,
        seed: int = 0,
        temperature: float = 1.0,
        labels: int | None = None,
    ) -> torch.Tensor:
        """Sample paths of the next ``horizon`` steps after ``context``.

        Args:
            context: the observed series ``(T0, D)`` or ``(T0,)`` for D = 1, in data units,
                at least ``receptive_field`` steps long.
            horizon: steps to draw.
            n_paths: paths (path i uses the seeded noise of index i).
            temperature: scale of each step's Gaussian draw (0: the mean path).

        Returns:
            ``(n_paths, horizon, D)`` in data units.

        Raises:
            ConfigError: a context shorter than the receptive field (the message says how
                long it must be), of the wrong shape, or a bad horizon/n_paths.
        """
        context = torch.as_tensor(context, dtype=torch.float32)
        if context.dim() == 1:
            context = context[:, None]
        self.check_data(context[None])
        if context.shape[0] < self.receptive_field:
            raise ConfigError(
                f"forecast(): the context has {context.shape[0]} steps; {self.name} needs at "
                f"least its receptive field, {self.receptive_field} steps"
            )
        for name, value in (("horizon", horizon), ("n_paths", n_paths)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"forecast(): {name} must be a positive integer, got {value!r}")
        noise = Noise.for_range(seed, 0, n_paths, self.device)
        values = self.to_values(context.to(self.device))[None].expand(n_paths, -1, -1)
        label = self._labels_tensor(labels, n_paths, noise)
        with _inference(self):
            drawn = self.generate(noise, horizon, label, temperature, True, values)
        return self.from_values(drawn)

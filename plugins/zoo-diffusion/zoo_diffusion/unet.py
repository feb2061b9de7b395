"""The noise-prediction UNet of DDPM.

Ho, Jain and Abbeel 2020, "Denoising Diffusion Probabilistic Models", arXiv 2006.11239,
appendix B: a PixelCNN++-style UNet of wide ResNet blocks with GroupNorm, self-attention at
the 16x16 resolution, and the Transformer's sinusoidal embedding of the timestep added to
every ResNet block. The computation is that of diffusers' ``UNet2DModel`` for the
configurations below, the form in which the paper's checkpoints are published
(``google/ddpm-cifar10-32``, ``google/ddpm-{church,bedroom,cat,celebahq}-256``), so that
those load through :func:`convert_diffusers_unet` and predict the same noise.

What differs from the paper:

- attention goes through ``torch.nn.functional.scaled_dot_product_attention``, and may use
  several heads (``attention_head_dim``); the paper's single head is ``None``;
- an optional class embedding (``num_class_embeds``, not in the paper) is added to the time
  embedding. The DDPM Generator gives it one row per class plus a last, null row, so that one
  network serves both terms of classifier-free guidance (Ho and Salimans 2022, arXiv
  2207.12598);
- a Python ``float`` timestep is kept fractional (diffusers truncates a scalar to ``int``).

The stride-2 downsampling conv with ``downsample_padding=0`` pads right and bottom only,
TensorFlow's "SAME" padding of the original code, as diffusers does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch import nn

from zoo_core.errors import ConfigError
from zoo_core.validation import one_line
from zoo_core.weights.renaming import current_diffusers_name, rename_state_dict

__all__ = ["UNet2D", "UNetConfig", "convert_diffusers_unet", "unet_config_from_diffusers"]


class UNetConfig(BaseModel):
    """The architecture of :class:`UNet2D`; field names and meanings as in diffusers'
    ``UNet2DModel`` (defaults differ: see :func:`unet_config_from_diffusers`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_size: int = Field(ge=1, description="Height and width of the images, in pixels.")
    in_channels: int = Field(ge=1, description="Channels of the input x_t.")
    out_channels: int = Field(ge=1, description="Channels of the prediction.")
    block_out_channels: tuple[int, ...] = Field(
        min_length=1,
        description="Channels of each resolution level, from the input resolution down; "
        "the first is also the width of the sinusoidal time embedding.",
    )
    down_block_types: tuple[Literal["DownBlock2D", "AttnDownBlock2D"], ...] = Field(
        description="Per level, going down: ResNet blocks alone, or each followed by "
        "self-attention."
    )
    up_block_types: tuple[Literal["UpBlock2D", "AttnUpBlock2D"], ...] = Field(
        description="Per level, going up (the lowest resolution first): ResNet blocks "
        "alone, or each followed by self-attention."
    )
    layers_per_block: int = Field(
        default=2, ge=1, description="ResNet blocks per level going down (one more going up)."
    )
    attention_head_dim: int | None = Field(
        default=None,
        ge=1,
        description="Channels per attention head; None: one head over all channels, as in "
        "the paper and google/ddpm-*.",
    )
    norm_num_groups: int = Field(default=32, ge=1, description="Groups of every GroupNorm.")
    norm_eps: float = Field(default=1e-6, gt=0, description="Epsilon of every GroupNorm.")
    dropout: float = Field(
        default=0.0, ge=0, lt=1, description="Dropout before each ResNet block's second conv."
    )
    flip_sin_to_cos: bool = Field(
        default=False,
        description="Time embedding as [cos, sin] instead of [sin, cos].",
    )
    freq_shift: int = Field(
        default=1,
        description="Time-embedding frequencies are 10000^(-i / (half - freq_shift)), "
        "i < half = block_out_channels[0] // 2.",
    )
    downsample_padding: int = Field(
        default=0,
        ge=0,
        le=1,
        description="Padding of the stride-2 downsampling conv; 0 pads right and bottom by "
        "one (TensorFlow's SAME, as the original code).",
    )
    center_input_sample: bool = Field(default=False, description="Map the input x to 2x - 1 first.")
    resnet_time_scale_shift: Literal["default"] = Field(
        default="default",
        description="How the time embedding enters a ResNet block: added after the first "
        "conv (the only form implemented).",
    )
    mid_block_scale_factor: float = Field(
        default=1.0,
        gt=0,
        description="The middle block's ResNet and attention outputs are divided by this.",
    )
    add_attention: bool = Field(
        default=True, description="Self-attention between the middle block's two ResNets."
    )
    num_class_embeds: int | None = Field(
        default=None,
        ge=1,
        description="Rows of a class embedding added to the time embedding; None: "
        "unconditional. The DDPM Generator uses classes + 1, the last row the null class of "
        "classifier-free guidance.",
    )

    @model_validator(mode="after")
    def _check_shapes(self) -> UNetConfig:
        levels = len(self.block_out_channels)
        if len(self.down_block_types) != levels or len(self.up_block_types) != levels:
            raise ValueError(
                f"block_out_channels, down_block_types and up_block_types need one entry per "
                f"level; got {levels}, {len(self.down_block_types)}, "
                f"{len(self.up_block_types)}"
            )
        for channels in self.block_out_channels:
            if channels < 1 or channels % self.norm_num_groups:
                raise ValueError(
                    f"block_out_channels {channels} is not a positive multiple of "
                    f"norm_num_groups {self.norm_num_groups}"
                )
        if self.attention_head_dim is not None:
            kinds = zip(self.block_out_channels, self.down_block_types, strict=True)
            attended = [c for c, kind in kinds if kind == "AttnDownBlock2D"]
            kinds = zip(self.block_out_channels[::-1], self.up_block_types, strict=True)
            attended += [c for c, kind in kinds if kind == "AttnUpBlock2D"]
            attended += [self.block_out_channels[-1]] if self.add_attention else []
            for channels in attended:
                if channels % self.attention_head_dim:
                    raise ValueError(
                        f"attention_head_dim {self.attention_head_dim} does not divide the "
                        f"{channels} channels of an attention layer"
                    )
        if self.sample_size % 2 ** (levels - 1):
            raise ValueError(
                f"sample_size {self.sample_size} is not divisible by 2^{levels - 1}, the "
                f"downsampling of {levels} levels"
            )
        return self


# ---------------------------------------------------------------------------- building blocks
def timestep_embedding(
    t: torch.Tensor, dim: int, flip_sin_to_cos: bool, freq_shift: float, max_period: int = 10000
) -> torch.Tensor:
    """Sinusoidal embedding (paper section 4, after Vaswani et al. 2017) of ``t`` ``(B,)``.

    Frequencies ``max_period^(-i / (dim/2 - freq_shift))``; returns float32 ``(B, dim)``.
    """
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device)
    freqs = torch.exp(exponent / (half - freq_shift))  # (half,)
    angles = t[:, None].float() * freqs[None, :]  # (B, half)
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)  # (B, 2 * half)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    return F.pad(emb, (0, dim % 2))  # (B, dim)


class ResBlock(nn.Module):
    """GroupNorm, SiLU, conv; + time projection; GroupNorm, SiLU, dropout, conv; + skip."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        time_channels: int,
        config: UNetConfig,
        output_scale: float = 1.0,
    ):
        super().__init__()
        groups, eps = config.norm_num_groups, config.norm_eps
        self.output_scale = output_scale
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_proj = nn.Linear(time_channels, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.dropout = nn.Dropout(config.dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        # a 1x1 conv where the channels change (the paper's NIN shortcut), else identity
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, C_in, H, W)``, ``temb`` ``(B, T)`` already through SiLU."""
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_out, H, W)
        h = h + self.time_proj(temb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))  # (B, C_out, H, W)
        shortcut = x if self.skip is None else self.skip(x)
        return (shortcut + h) / self.output_scale


class SelfAttention(nn.Module):
    """Residual multi-head self-attention over the ``H*W`` positions of a feature map."""

    def __init__(self, channels: int, config: UNetConfig, output_scale: float = 1.0):
        super().__init__()
        self.heads = channels // (config.attention_head_dim or channels)
        self.output_scale = output_scale
        self.norm = nn.GroupNorm(config.norm_num_groups, channels, eps=config.norm_eps)
        self.q = nn.Linear(channels, channels)
        self.k = nn.Linear(channels, channels)
        self.v = nn.Linear(channels, channels)
        self.out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).reshape(b, c, h * w).transpose(1, 2)  # (B, HW, C)

        def split(t: torch.Tensor) -> torch.Tensor:  # (B, HW, C) -> (B, heads, HW, C/heads)
            return t.reshape(b, h * w, self.heads, c // self.heads).transpose(1, 2)

        q, k, v = split(self.q(tokens)), split(self.k(tokens)), split(self.v(tokens))
        attended = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, C/heads)
        attended = attended.transpose(1, 2).reshape(b, h * w, c)  # (B, HW, C)
        out = self.out(attended).transpose(1, 2).reshape(b, c, h, w)  # (B, C, H, W)
        return (x + out) / self.output_scale


class Downsample(nn.Module):
    """A stride-2 3x3 conv: ``(B, C, H, W)`` -> ``(B, C, H/2, W/2)``."""

    def __init__(self, channels: int, padding: int):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1))  # (B, C, H+1, W+1): right and bottom only
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour 2x, then a 3x3 conv: ``(B, C, H, W)`` -> ``(B, C, 2H, 2W)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownLevel(nn.Module):
    """``layers_per_block`` ResNet blocks (each optionally followed by attention), then a
    downsampling unless it is the last level. Every output is kept for the skips."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        time_channels: int,
        attention: bool,
        downsample: bool,
        config: UNetConfig,
    ):
        super().__init__()
        self.res = nn.ModuleList(
            ResBlock(in_channels if i == 0 else channels, channels, time_channels, config)
            for i in range(config.layers_per_block)
        )
        self.attn = nn.ModuleList(SelfAttention(channels, config) for _ in self.res if attention)
        self.downsample = Downsample(channels, config.downsample_padding) if downsample else None

    def forward(
        self, x: torch.Tensor, temb: torch.Tensor, skips: list[torch.Tensor]
    ) -> torch.Tensor:
        for i, res in enumerate(self.res):
            x = res(x, temb)
            if self.attn:
                x = self.attn[i](x)
            skips.append(x)
        if self.downsample is not None:
            x = self.downsample(x)
            skips.append(x)
        return x


class UpLevel(nn.Module):
    """``layers_per_block + 1`` ResNet blocks, each on the concatenation of the running
    features and one skip (the latest first), optionally followed by attention; then an
    upsampling unless it is the last level."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        skip_channels: list[int],
        time_channels: int,
        attention: bool,
        upsample: bool,
        config: UNetConfig,
    ):
        super().__init__()
        self.res = nn.ModuleList(
            ResBlock((in_channels if i == 0 else channels) + skip, channels, time_channels, config)
            for i, skip in enumerate(skip_channels)
        )
        self.attn = nn.ModuleList(SelfAttention(channels, config) for _ in self.res if attention)
        self.upsample = Upsample(channels) if upsample else None

    def forward(
        self, x: torch.Tensor, temb: torch.Tensor, skips: list[torch.Tensor]
    ) -> torch.Tensor:
        for i, res in enumerate(self.res):
            x = torch.cat([x, skips.pop()], dim=1)  # (B, C + C_skip, H, W)
            x = res(x, temb)  # (B, channels, H, W)
            if self.attn:
                x = self.attn[i](x)
        if self.upsample is not None:
            x = self.upsample(x)
        return x


class MidBlock(nn.Module):
    """ResNet block, self-attention (unless ``add_attention`` is off), ResNet block."""

    def __init__(self, channels: int, time_channels: int, config: UNetConfig):
        super().__init__()
        scale = config.mid_block_scale_factor
        self.res1 = ResBlock(channels, channels, time_channels, config, output_scale=scale)
        self.attn = (
            SelfAttention(channels, config, output_scale=scale) if config.add_attention else None
        )
        self.res2 = ResBlock(channels, channels, time_channels, config, output_scale=scale)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        x = self.res1(x, temb)
        if self.attn is not None:
            x = self.attn(x)
        return self.res2(x, temb)


# --------------------------------------------------------------------------------- the module
class UNet2D(nn.Module):
    """The DDPM noise-prediction network ε_θ(x_t, t) (Ho et al. 2020, appendix B).

    Args:
        config: the architecture.

    State-dict names: ``conv_in``, ``time_mlp.{0,2}``, ``class_embed`` (with
    ``num_class_embeds``), ``down.{i}.{res,attn}.{j}``, ``down.{i}.downsample``,
    ``mid.{res1,attn,res2}``, ``up.{i}.{res,attn}.{j}``, ``up.{i}.upsample``, ``norm_out``,
    ``conv_out``; ResNet blocks hold ``norm1, conv1, time_proj, norm2, conv2, skip``,
    attention ``norm, q, k, v, out``.
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        channels = config.block_out_channels
        levels = len(channels)
        time_channels = 4 * channels[0]

        self.conv_in = nn.Conv2d(config.in_channels, channels[0], 3, padding=1)
        self.time_mlp = nn.Sequential(
            nn.Linear(channels[0], time_channels),
            nn.SiLU(),
            nn.Linear(time_channels, time_channels),
        )
        self.class_embed = (
            nn.Embedding(config.num_class_embeds, time_channels)
            if config.num_class_embeds is not None
            else None
        )

        self.down = nn.ModuleList()
        skip_channels = [channels[0]]  # channels of each skip, in the order they are pushed
        for i, kind in enumerate(config.down_block_types):
            last = i == levels - 1
            stage = DownLevel(
                channels[max(i - 1, 0)],
                channels[i],
                time_channels,
                attention=kind == "AttnDownBlock2D",
                downsample=not last,
                config=config,
            )
            self.down.append(stage)
            skip_channels += [channels[i]] * (config.layers_per_block + (not last))

        self.mid = MidBlock(channels[-1], time_channels, config)

        self.up = nn.ModuleList()
        running = channels[-1]
        for i, kind in enumerate(config.up_block_types):
            level = levels - 1 - i
            popped = [skip_channels.pop() for _ in range(config.layers_per_block + 1)]
            self.up.append(
                UpLevel(
                    running,
                    channels[level],
                    popped,
                    time_channels,
                    attention=kind == "AttnUpBlock2D",
                    upsample=level > 0,
                    config=config,
                )
            )
            running = channels[level]

        self.norm_out = nn.GroupNorm(config.norm_num_groups, channels[0], eps=config.norm_eps)
        self.conv_out = nn.Conv2d(channels[0], config.out_channels, 3, padding=1)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor | int | float,
        class_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the noise in ``x``.

        Args:
            x: ``(B, in_channels, H, W)``, H and W divisible by ``2^(levels - 1)``.
            t: timesteps ``(B,)``, or one for the whole batch (a scalar, 0-d or ``(1,)``
                tensor); integers or fractional.
            class_labels: ``(B,)`` int64 rows of the class embedding; required exactly when
                ``num_class_embeds`` is set.

        Returns:
            ``(B, out_channels, H, W)``.
        """
        batch = x.shape[0]
        t = torch.as_tensor(t, device=x.device)
        if t.ndim > 1 or t.numel() not in (1, batch):
            raise ValueError(f"t must be a scalar or of shape ({batch},), got {tuple(t.shape)}")
        t = t.reshape(-1).expand(batch)  # (B,)

        if self.config.center_input_sample:
            x = 2 * x - 1.0
        dtype = self.conv_in.weight.dtype
        c = self.config
        emb = timestep_embedding(t, c.block_out_channels[0], c.flip_sin_to_cos, c.freq_shift)
        emb = self.time_mlp(emb.to(dtype))  # (B, C0) -> (B, 4 C0)
        if self.class_embed is not None:
            if class_labels is None:
                raise ValueError("class_labels are required: this UNet is class-conditional")
            emb = emb + self.class_embed(class_labels).to(dtype)  # (B, 4 C0)
        elif class_labels is not None:
            raise ValueError("class_labels given, but this UNet has no class embedding")
        # every ResNet block starts its time projection with SiLU: apply it once here
        temb = F.silu(emb)  # (B, 4 C0)

        h = self.conv_in(x)  # (B, C0, H, W)
        skips = [h]
        for level in self.down:
            h = level(h, temb, skips)
        h = self.mid(h, temb)  # (B, C_last, H / 2^(levels-1), W / 2^(levels-1))
        for level in self.up:
            h = level(h, temb, skips)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, out_channels, H, W)


# ------------------------------------------------------------ foreign-checkpoint conversion
# UNet2DModel's arguments that this UNet implements at these values only; then the keys of a
# config.json that do not change the computation.
_DIFFUSERS_FIXED: dict[str, tuple[Any, ...]] = {
    "time_embedding_type": ("positional",),
    "time_embedding_dim": (None,),
    "mid_block_type": ("UNetMidBlock2D",),
    "downsample_type": ("conv",),
    "upsample_type": ("conv",),
    "act_fn": ("silu", "swish"),
    "attn_norm_num_groups": (None,),
    "resnet_time_scale_shift": ("default",),
    "class_embed_type": (None,),
}
_DIFFUSERS_IGNORED = {
    "_class_name",
    "_diffusers_version",
    "_name_or_path",
    "_use_default_values",
    "num_train_timesteps",  # sizes a learned time embedding only
}
# UNet2DModel's defaults where a config.json omits a key (older files omit several).
_DIFFUSERS_DEFAULTS: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "center_input_sample": False,
    "freq_shift": 0,
    "flip_sin_to_cos": True,
    "down_block_types": ("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
    "up_block_types": ("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    "block_out_channels": (224, 448, 672, 896),
    "layers_per_block": 2,
    "mid_block_scale_factor": 1.0,
    "downsample_padding": 1,
    "dropout": 0.0,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "resnet_time_scale_shift": "default",
    "add_attention": True,
    "num_class_embeds": None,
}


def unet_config_from_diffusers(config: Mapping[str, Any]) -> UNetConfig:
    """The :class:`UNetConfig` of a diffusers ``UNet2DModel`` ``config.json`` (as a dict).

    A key the file omits takes ``UNet2DModel``'s default, as diffusers would (these differ
    from :class:`UNetConfig`'s: e.g. ``attention_head_dim`` 8, ``freq_shift`` 0).

    Raises:
        ConfigError: naming the key of an option this UNet does not implement (a Fourier
            time embedding, ``class_embed_type``, ``attn_norm_num_groups``, scale-shift
            ResNets, an activation other than SiLU, ...), an unknown key, or a bad value.
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"a diffusers UNet config must be a mapping, got {type(config).__name__}")
    name = config.get("_class_name", "UNet2DModel")
    if name != "UNet2DModel":
        raise ConfigError(f"_class_name {name!r}: only a diffusers UNet2DModel converts")
    for key, allowed in _DIFFUSERS_FIXED.items():
        if key in config and config[key] not in allowed:
            raise ConfigError(
                f"{key}={config[key]!r} is not supported by the DDPM UNet "
                f"(supported: {', '.join(map(repr, allowed))})"
            )
    fields = {}
    for key, value in config.items():
        if key in _DIFFUSERS_FIXED or key in _DIFFUSERS_IGNORED:
            continue
        if key not in UNetConfig.model_fields:
            raise ConfigError(
                f"{key!r} is not an option of diffusers' UNet2DModel that the DDPM UNet knows"
            )
        fields[key] = value
    for key, value in _DIFFUSERS_DEFAULTS.items():
        fields.setdefault(key, value)
    if fields.get("sample_size") is None or isinstance(fields["sample_size"], list | tuple):
        raise ConfigError(
            f"sample_size={fields.get('sample_size')!r}: the DDPM UNet needs one integer size"
        )
    try:
        return UNetConfig.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError("diffusers UNet config: " + one_line(exc, whole="(config)")) from None


# Our state-dict names -> diffusers' current ones, applied in order.
_TO_DIFFUSERS = [
    (r"^time_mlp\.0\.", "time_embedding.linear_1."),
    (r"^time_mlp\.2\.", "time_embedding.linear_2."),
    (r"^class_embed\.", "class_embedding."),
    (r"^norm_out\.", "conv_norm_out."),
    (r"^(down|up)\.(\d+)\.res\.", r"\1_blocks.\2.resnets."),
    (r"^(down|up)\.(\d+)\.attn\.", r"\1_blocks.\2.attentions."),
    (r"^down\.(\d+)\.downsample\.", r"down_blocks.\1.downsamplers.0."),
    (r"^up\.(\d+)\.upsample\.", r"up_blocks.\1.upsamplers.0."),
    (r"^mid\.res1\.", "mid_block.resnets.0."),
    (r"^mid\.res2\.", "mid_block.resnets.1."),
    (r"^mid\.attn\.", "mid_block.attentions.0."),
    (r"\.time_proj\.", ".time_emb_proj."),
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


def convert_diffusers_unet(
    state: Mapping[str, torch.Tensor],
    config: UNetConfig,
    *,
    source: str = "the diffusers UNet2DModel state dict",
) -> dict[str, torch.Tensor]:
    """Rename a diffusers ``UNet2DModel`` state dict to :class:`UNet2D`'s names.

    Accepts the current attention names (``to_q``, ``to_k``, ``to_v``, ``to_out.0``) and
    the deprecated ones (``query``, ``key``, ``value``, ``proj_attn``). The tensors are
    not copied.

    Raises:
        StateDictMismatchError: listing, by their names in ``source``, the tensors that are
            missing, unexpected (or given twice under an old and a new name), or mis-shaped
            for ``config``.
    """
    with torch.device("meta"):  # names and shapes only, no memory
        expected = {name: tuple(t.shape) for name, t in UNet2D(config).state_dict().items()}
    return rename_state_dict(
        state, expected, _diffusers_name, source=source, alias=current_diffusers_name
    )

"""The DDPM UNet against diffusers' ``UNet2DModel``, the reference for the google/ddpm-* files.

Each reference model gets random weights (seeded; GroupNorm affines too, so that a swapped
norm shows), goes through ``save_pretrained`` to disk, and comes back through our config
and state-dict converters; both then predict the noise of the same random inputs.
"""

from __future__ import annotations

import json
import re

import pytest
import torch
from diffusers import UNet2DModel
from safetensors.torch import load_file
from torch import nn
from zoo_diffusion.unet import (
    UNet2D,
    UNetConfig,
    convert_diffusers_unet,
    unet_config_from_diffusers,
)

from zoo_core.errors import ConfigError, StateDictMismatchError

# config.json of google/ddpm-cifar10-32 as published (diffusers 0.0.4; the hub file adds
# "attention_head_dim": null). Attention at 16x16 only, going down and going up.
CIFAR10 = {
    "_class_name": "UNet2DModel",
    "_diffusers_version": "0.0.4",
    "act_fn": "silu",
    "attention_head_dim": None,
    "block_out_channels": [128, 256, 256, 256],
    "center_input_sample": False,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
    "downsample_padding": 0,
    "flip_sin_to_cos": False,
    "freq_shift": 1,
    "in_channels": 3,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-06,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 32,
    "time_embedding_type": "positional",
    "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
}
# config.json of google/ddpm-church-256 (bedroom, cat and celebahq share it).
CHURCH256 = {
    **CIFAR10,
    "block_out_channels": [128, 128, 256, 256, 512, 512],
    "down_block_types": ["DownBlock2D"] * 4 + ["AttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "AttnUpBlock2D"] + ["UpBlock2D"] * 4,
    "sample_size": 256,
}
# Small enough to run in a fraction of a second; the options under test are set on top.
TINY = {
    "sample_size": 16,
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": [32, 64],
    "down_block_types": ["AttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "AttnUpBlock2D"],
    "layers_per_block": 1,
    "attention_head_dim": None,
    "norm_num_groups": 8,
    "norm_eps": 1e-6,
    "downsample_padding": 0,
    "flip_sin_to_cos": False,
    "freq_shift": 1,
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The suite shares few cores; one thread also makes the timings steady."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def reference(config: dict, seed: int = 0) -> UNet2DModel:
    """A diffusers UNet2DModel with seeded random weights, GroupNorm affines included."""
    torch.manual_seed(seed)
    model = UNet2DModel(**{k: v for k, v in config.items() if not k.startswith("_")})
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.GroupNorm):
                module.weight.add_(0.1 * torch.randn_like(module.weight))
                module.bias.add_(0.1 * torch.randn_like(module.bias))
    return model.eval()


def saved(model: UNet2DModel, directory) -> tuple[dict, dict[str, torch.Tensor]]:
    """``save_pretrained`` to ``directory``, then its config.json and tensors read back."""
    model.save_pretrained(directory, safe_serialization=True)
    config = json.loads((directory / "config.json").read_text())
    return config, load_file(directory / "diffusion_pytorch_model.safetensors")


def ours_from(config: dict, state: dict[str, torch.Tensor]) -> UNet2D:
    unet_config = unet_config_from_diffusers(config)
    model = UNet2D(unet_config)
    model.load_state_dict(convert_diffusers_unet(state, unet_config), strict=True)
    return model.eval()


def assert_same_noise(ref: UNet2DModel, ours: UNet2D, batch: int, size: int, **kw) -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, ref.config.in_channels, size, size, generator=generator)
    t = torch.randint(0, 1000, (batch,), generator=generator)
    with torch.no_grad():
        expected = ref(x, t, **kw).sample
        actual = ours(x, t, **kw)
    assert actual.shape == (batch, ref.config.out_channels, size, size)
    assert expected.abs().max() > 0.1  # a prediction worth comparing
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def cifar10(tmp_path_factory):
    """A random UNet2DModel of the ddpm-cifar10-32 config, its config.json and tensors."""
    model = reference(CIFAR10)
    return model, *saved(model, tmp_path_factory.mktemp("cifar10"))


@pytest.fixture
def cifar10_files(cifar10):
    return cifar10[1:]


# ------------------------------------------------------------------------ published configs
@pytest.mark.parametrize(
    ("published", "parameters"),
    [(CIFAR10, 35.7e6), (CHURCH256, 114e6)],
    ids=["cifar10-32", "church-256"],
)
def test_published_config_reads_as_the_paper_describes(published, parameters):
    config = unet_config_from_diffusers(published)
    assert config.attention_head_dim is None  # one head, as the paper
    assert (config.flip_sin_to_cos, config.freq_shift, config.downsample_padding) == (False, 1, 0)
    # attention at 16x16 only, on the way down and on the way up
    levels = len(config.block_out_channels)
    down = [i for i, kind in enumerate(config.down_block_types) if kind == "AttnDownBlock2D"]
    up = [levels - 1 - i for i, kind in enumerate(config.up_block_types) if kind == "AttnUpBlock2D"]
    assert down == up and [config.sample_size >> i for i in down] == [16]
    # Ho et al. 2020, appendix B: 35.7 million parameters (CIFAR10), 114 million (256x256)
    with torch.device("meta"):
        count = sum(p.numel() for p in UNet2D(config).parameters())
    assert count == pytest.approx(parameters, rel=0.005)


def test_cifar10_matches_diffusers(cifar10):
    model, config, state = cifar10
    assert_same_noise(model, ours_from(config, state), batch=4, size=32)


@pytest.mark.slow
def test_church256_matches_diffusers(tmp_path):
    """Full size, 114M parameters, batch 1 at 256x256 (10-16 s on one CPU thread here)."""
    model = reference(CHURCH256)
    config, state = saved(model, tmp_path)
    assert_same_noise(model, ours_from(config, state), batch=1, size=256)


# ------------------------------------------------------------------------- other options
@pytest.mark.parametrize(
    "options",
    [
        {"attention_head_dim": 8},  # 4 heads of 8 channels at level 0, 8 in the middle
        {"flip_sin_to_cos": True, "freq_shift": 0, "downsample_padding": 1},
        {"center_input_sample": True, "mid_block_scale_factor": 1.5, "norm_eps": 1e-5},
        {"add_attention": False, "layers_per_block": 2, "dropout": 0.1},
        {
            "block_out_channels": [32, 64, 64],
            "sample_size": 32,
            "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
            "up_block_types": ["AttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
        },
    ],
    ids=["heads", "cos-sin-padding", "center-scale-eps", "no-mid-attention", "three-levels"],
)
def test_options_match_diffusers(options, tmp_path):
    model = reference({**TINY, **options})
    config, state = saved(model, tmp_path)
    size = options.get("sample_size", TINY["sample_size"])
    assert_same_noise(model, ours_from(config, state), batch=3, size=size)


def test_omitted_keys_take_the_diffusers_defaults():
    """A config.json without a key means UNet2DModel's default (attention_head_dim 8, ...)."""
    kept = ("sample_size", "block_out_channels", "down_block_types", "up_block_types")
    sparse = {key: TINY[key] for key in kept} | {"norm_num_groups": 8}
    config = unet_config_from_diffusers(sparse)
    assert config.attention_head_dim == 8 and config.freq_shift == 0 and config.flip_sin_to_cos
    model = reference(sparse)
    assert_same_noise(model, ours_from(sparse, model.state_dict()), batch=2, size=16)


def test_class_embedding_matches_diffusers(tmp_path):
    model = reference({**TINY, "num_class_embeds": 11})
    config, state = saved(model, tmp_path)
    ours = ours_from(config, state)
    labels = torch.tensor([0, 3, 10])  # 10: the null class of classifier-free guidance
    assert_same_noise(model, ours, batch=3, size=16, class_labels=labels)
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(ours(x, 5, labels), ours(x, 5, torch.tensor([10, 10, 10])))
    with pytest.raises(ValueError, match="class_labels"):
        ours(x, 5)


def test_timesteps_scalar_tensor_or_fractional(tmp_path):
    model = reference(TINY)
    ours = ours_from(*saved(model, tmp_path))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        full = ours(x, torch.tensor([7, 7]))
        for scalar in (7, torch.tensor(7), torch.tensor([7])):
            torch.testing.assert_close(ours(x, scalar), full, atol=0, rtol=0)
        fractional = torch.tensor([7.5, 7.5])
        torch.testing.assert_close(ours(x, 7.5), ours(x, fractional), atol=0, rtol=0)
        expected = model(x, fractional).sample
        torch.testing.assert_close(ours(x, fractional), expected, atol=1e-5, rtol=0)
        assert not torch.allclose(ours(x, 7.5), full)
        with pytest.raises(ValueError, match="shape"):
            ours(x, torch.tensor([1, 2, 3]))


# ------------------------------------------------------------------------ deprecated names
def test_deprecated_attention_names_convert_alike(cifar10_files):
    config, state = cifar10_files
    old_names = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    pattern = re.compile(r"\.attentions\.(\d+)\.(to_q|to_k|to_v|to_out\.0)\.")
    old = {
        pattern.sub(lambda m: f".attentions.{m[1]}.{old_names[m[2]]}.", name): tensor
        for name, tensor in state.items()
    }
    renamed = set(old) - set(state)
    # 6 attention layers (2 down, 1 middle, 3 up) x 4 linears x (weight, bias)
    assert len(renamed) == 48 and "mid_block.attentions.0.proj_attn.weight" in renamed
    assert "mid_block.attentions.0.group_norm.weight" in old  # group_norm keeps its name
    unet_config = unet_config_from_diffusers(config)
    new, deprecated = (convert_diffusers_unet(s, unet_config) for s in (state, old))
    assert new.keys() == deprecated.keys()
    assert all(deprecated[name] is new[name] for name in new)


# ---------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("time_embedding_type", "fourier"),
        ("class_embed_type", "timestep"),
        ("attn_norm_num_groups", 32),
        ("resnet_time_scale_shift", "scale_shift"),
        ("act_fn", "gelu"),
        ("mid_block_type", None),
        ("downsample_type", "resnet"),
        ("upsample_type", "resnet"),
        ("time_embedding_dim", 1024),
        ("cross_attention_dim", 768),  # not a UNet2DModel option at all
        ("down_block_types", ["DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D", "DownBlock2D"]),
        ("block_out_channels", [128, 256, 256]),
        ("norm_num_groups", 24),
        ("sample_size", [32, 32]),
        ("_class_name", "UNet2DConditionModel"),
    ],
)
def test_unsupported_config_option_is_named(key, value):
    with pytest.raises(ConfigError) as error:
        unet_config_from_diffusers({**CIFAR10, key: value})
    message = str(error.value)
    assert key in message and "\n" not in message


def test_bookkeeping_keys_are_ignored():
    config = {**CIFAR10, "_name_or_path": "google/ddpm-cifar10-32", "_use_default_values": []}
    assert unet_config_from_diffusers(config) == unet_config_from_diffusers(CIFAR10)
    assert unet_config_from_diffusers({**CIFAR10, "add_attention": False}).add_attention is False


def test_config_is_strict():
    with pytest.raises(ValueError, match="extra"):
        UNetConfig(**{**TINY, "attention_heads": 4})
    with pytest.raises(ValueError, match="attention_head_dim"):
        UNetConfig(**{**TINY, "attention_head_dim": 12})


def _mismatch(state: dict, config: dict) -> StateDictMismatchError:
    with pytest.raises(StateDictMismatchError) as error:
        convert_diffusers_unet(state, unet_config_from_diffusers(config))
    return error.value


def test_missing_tensor_is_listed(cifar10_files):
    config, state = cifar10_files
    name = "up_blocks.2.attentions.1.to_k.bias"
    error = _mismatch({k: v for k, v in state.items() if k != name}, config)
    assert error.missing == [name] and not error.unexpected and not error.mismatched
    assert name in str(error)


def test_renamed_tensor_is_listed(cifar10_files):
    config, state = cifar10_files
    state = dict(state)
    state["mid_block.resnets.0.conv_1.weight"] = state.pop("mid_block.resnets.0.conv1.weight")
    error = _mismatch(state, config)
    assert error.missing == ["mid_block.resnets.0.conv1.weight"]
    assert error.unexpected == ["mid_block.resnets.0.conv_1.weight"]


def test_misshaped_tensor_is_listed(cifar10_files):
    config, state = cifar10_files
    state = {**state, "conv_out.weight": torch.zeros(4, 128, 3, 3)}
    error = _mismatch(state, config)
    assert error.mismatched == [("conv_out.weight", (4, 128, 3, 3), (3, 128, 3, 3))]
    assert "conv_out.weight" in str(error)


def test_old_and_new_name_of_one_tensor_is_listed(cifar10_files):
    config, state = cifar10_files
    state = {**state, "mid_block.attentions.0.query.weight": torch.zeros(256, 256)}
    error = _mismatch(state, config)
    assert error.unexpected and "mid_block.attentions.0.query.weight" in error.unexpected[0]


def test_weights_of_another_config_are_refused(cifar10_files):
    _, state = cifar10_files
    error = _mismatch(state, CHURCH256)
    assert error.missing and error.unexpected and error.mismatched

"""autoencoder-kl against diffusers' ``AutoencoderKL``, the reference for stabilityai/sd-vae-ft-mse.

Each reference model gets seeded random weights (GroupNorm affines too, so that a swapped norm
shows), goes to disk through diffusers' own ``save_pretrained``, and comes back through the
``diffusers-vae`` converter; both then encode and decode the same random inputs.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from diffusers import AutoencoderKL as DiffusersAutoencoderKL
from safetensors.torch import load_file, save_file
from torch import nn
from zoo_vae.autoencoder_kl import (
    AutoencoderKL,
    config_from_diffusers,
    state_dict_from_diffusers,
)

import zoo_core
from zoo_core.errors import CapabilityError, ConfigError, StateDictMismatchError
from zoo_core.seeding import Noise

MODEL_ID = "sd-vae-ft-mse"
REPO = "stabilityai/sd-vae-ft-mse"
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # a made-up snapshot of the cache
WEIGHTS = "diffusion_pytorch_model.safetensors"
# config.json of stabilityai/sd-vae-ft-mse as published (written by diffusers 0.4.2): no
# scaling_factor, use_quant_conv, ... yet, so AutoencoderKL's defaults apply.
SD_VAE = {
    "_class_name": "AutoencoderKL",
    "_diffusers_version": "0.4.2",
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 256,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
# Small enough to run in a fraction of a second; the options under test are set on top.
SMALL = {
    "block_out_channels": [32, 64],
    "down_block_types": ["DownEncoderBlock2D"] * 2,
    "up_block_types": ["UpDecoderBlock2D"] * 2,
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 8,
    "sample_size": 32,
}


@pytest.fixture(autouse=True)
def fresh_plugins(fresh_zoo):
    """Each test starts with freshly loaded plugins and a clean ZOO_* environment (the
    kit's ``fresh_zoo``)."""


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The suite shares few cores; one thread also makes the timings steady."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def reference(config: dict, seed: int = 0) -> DiffusersAutoencoderKL:
    """A diffusers AutoencoderKL with seeded random weights, GroupNorm affines included, and
    an output layer scaled so that few decoded pixels reach the clamp at 0 or 1."""
    torch.manual_seed(seed)
    model = DiffusersAutoencoderKL(**{k: v for k, v in config.items() if not k.startswith("_")})
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.GroupNorm):
                module.weight.add_(0.1 * torch.randn_like(module.weight))
                module.bias.add_(0.1 * torch.randn_like(module.bias))
        model.decoder.conv_out.weight.mul_(0.3)
    return model.eval()


def save(model: DiffusersAutoencoderKL, directory, config: dict | None = None):
    """``save_pretrained`` into ``directory`` (its config.json replaced by ``config``)."""
    model.save_pretrained(directory, safe_serialization=True)
    if config is not None:
        (directory / "config.json").write_text(json.dumps(config))
    return directory


def ours_from(directory) -> AutoencoderKL:
    """Our model from a diffusers folder through the converter's two halves."""
    config = config_from_diffusers(json.loads((directory / "config.json").read_text()))
    model = AutoencoderKL(config)
    model.load_state_dict(state_dict_from_diffusers(load_file(directory / WEIGHTS), config))
    return model.eval()


def images(batch: int, size: int, channels: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(seed))


def latents(batch: int, channels: int, size: int, seed: int = 2) -> torch.Tensor:
    shape = (batch, channels, size, size)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def assert_same_as_diffusers(ref: DiffusersAutoencoderKL, ours: AutoencoderKL, size: int):
    """Posterior mean and log-variance of images, and decoded random latents, to 1e-4."""
    x = images(2, size, ref.config.in_channels)
    z = latents(2, ref.config.latent_channels, size // ours.config.downsampling)
    with torch.no_grad():
        posterior = ref.encode(x * 2 - 1).latent_dist
        expected = ((ref.decode(z).sample + 1) / 2).clamp(0, 1)
    mean, logvar = ours.posterior(x)
    torch.testing.assert_close(mean, posterior.mean, atol=1e-4, rtol=0)
    torch.testing.assert_close(logvar, posterior.logvar, atol=1e-4, rtol=0)
    torch.testing.assert_close(ours.encode(x), posterior.mean, atol=1e-4, rtol=0)
    decoded = ours.decode(z)
    assert decoded.shape == expected.shape == (2, ref.config.out_channels, size, size)
    torch.testing.assert_close(decoded, expected, atol=1e-4, rtol=0)
    assert posterior.mean.abs().max() > 0.1 and expected.std() > 0.01  # worth comparing
    assert ((decoded == 0) | (decoded == 1)).float().mean() < 0.05  # mostly below the clamp


# ------------------------------------------------------------------ the published model
@pytest.fixture(scope="module")
def sd_vae(tmp_path_factory):
    """A random AutoencoderKL of the sd-vae-ft-mse configuration, in a folder laid out like
    the Hub repository (with the published config.json)."""
    model = reference(SD_VAE)
    return model, save(model, tmp_path_factory.mktemp("sd-vae-ft-mse"), SD_VAE)


def test_sd_vae_ft_mse_loads_from_a_local_copy_and_matches_diffusers(sd_vae):
    ref, folder = sd_vae
    model = zoo_core.load(MODEL_ID, weights=folder)
    assert isinstance(model, AutoencoderKL) and model.card.id == MODEL_ID
    assert not model.training and model.config.downsampling == 8
    # the published file predates scaling_factor: AutoencoderKL's default, as in diffusers
    assert model.config.scaling_factor == 0.18215 == ref.config.scaling_factor
    assert sum(p.numel() for p in model.parameters()) == 83_653_863
    assert_same_as_diffusers(ref, model, size=64)


def test_the_card_loads_offline_from_the_hub_cache(tmp_path, monkeypatch, hub_cache, no_network):
    """The sd-vae-ft-mse card, its files in a hand-built Hugging Face cache (a small model of
    the same format: the card reads the configuration from the repository)."""
    ref = reference(SMALL)
    folder = save(ref, tmp_path / "repo")
    hub_cache(
        REPO, COMMIT, {name: (folder / name).read_bytes() for name in ("config.json", WEIGHTS)}
    )
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = zoo_core.load(MODEL_ID)
    assert model.card.weights.hub == REPO and model.card.weights.format == "diffusers-vae"
    assert_same_as_diffusers(ref, model, size=32)
    assert no_network == []


def test_the_plugin_registers_the_architecture():
    from zoo_core.loading import architecture_class

    assert architecture_class("autoencoder-kl") is AutoencoderKL
    assert zoo_core.list_models(MODEL_ID) == [MODEL_ID]


# -------------------------------------------------------------------------- other options
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"mid_block_add_attention": False},
        {"use_quant_conv": False, "use_post_quant_conv": False},
        {"in_channels": 1, "out_channels": 2, "latent_channels": 3, "layers_per_block": 2},
        {
            "block_out_channels": [16, 32, 32],
            "down_block_types": ["DownEncoderBlock2D"] * 3,
            "up_block_types": ["UpDecoderBlock2D"] * 3,
        },
    ],
    ids=["small", "no-mid-attention", "no-quant-convs", "channels-layers", "three-levels"],
)
def test_options_match_diffusers(options, tmp_path):
    ref = reference({**SMALL, **options})
    assert_same_as_diffusers(ref, ours_from(save(ref, tmp_path)), size=32)


def test_the_log_variance_is_clamped_as_diffusers_does(tmp_path):
    ref = reference(SMALL)
    with torch.no_grad():
        ref.quant_conv.bias[4:] += 60.0  # the log-variance half of the moments
    assert_same_as_diffusers(ref, ours_from(save(ref, tmp_path)), size=16)
    assert (ours_from(tmp_path).posterior(images(1, 16))[1] == 20.0).all()


def test_deprecated_attention_names_and_conv_weights_convert_alike(tmp_path):
    """The names of diffusers before 0.15 (query, key, value, proj_attn), with the weights
    of 1x1 convs as converted from the original checkpoints, load like the current ones."""
    ref = reference(SMALL)
    folder = save(ref, tmp_path / "old")
    old = {}
    for name, tensor in load_file(folder / WEIGHTS).items():
        for new, dated in [("to_q", "query"), ("to_k", "key"), ("to_v", "value")]:
            name = name.replace(f".{new}.", f".{dated}.")
        name = name.replace(".to_out.0.", ".proj_attn.")
        if name.endswith(("query.weight", "key.weight", "value.weight", "proj_attn.weight")):
            tensor = tensor[:, :, None, None]  # (C, C, 1, 1)
        old[name] = tensor.contiguous()
    assert any(".proj_attn." in name for name in old)
    save_file(old, folder / WEIGHTS)
    model = zoo_core.load(MODEL_ID, weights=folder)
    assert_same_as_diffusers(ref, model, size=16)

    both = {**old, **ref.state_dict()}  # the same tensor under its old and its new name
    with pytest.raises(StateDictMismatchError, match="a second copy of"):
        state_dict_from_diffusers(both, model.config)


# ------------------------------------------------------------------- encode and decode
@pytest.fixture(scope="module")
def small(tmp_path_factory) -> AutoencoderKL:
    return ours_from(save(reference(SMALL), tmp_path_factory.mktemp("small")))


@pytest.mark.numerics
def test_a_posterior_draw_follows_the_seeding_rule(small):
    x = images(3, 16)
    mean, logvar = small.posterior(x)
    draw = small.encode(x, sample=True, seed=5)
    eps = Noise.for_range(5, 0, 3).randn(*mean.shape[1:])
    torch.testing.assert_close(draw, mean + torch.exp(0.5 * logvar) * eps)
    # (seed, index) only; another batch shape: equal up to the float rounding of its kernels
    torch.testing.assert_close(small.encode(x[:2], sample=True, seed=5), draw[:2])
    assert not torch.equal(small.encode(x, sample=True, seed=6), draw)
    with pytest.raises(ConfigError, match="sample=True"):
        small.encode(x, seed=5)


def test_sample_is_refused_with_the_reason(small):
    assert "sample" not in small.capabilities
    assert small.capabilities == {"encode", "decode"}
    for call in (lambda: small.sample(1, seed=0), lambda: small.sample_batch(None, None)):
        with pytest.raises(CapabilityError) as info:
            call()
        message = str(info.value)
        assert "'sample'" in message and "latent prior is not a trained model" in message
        assert "sample a latent diffusion model and decode its latents" in message


@pytest.mark.parametrize(
    ("z", "said"),
    [
        (torch.zeros(4, 8, 8), "got shape (4, 8, 8)"),  # no batch dimension
        (torch.zeros(1, 3, 8, 8), "got shape (1, 3, 8, 8)"),  # channels: an image, not latents
        (torch.zeros(1, 8, 8, 4), "got shape (1, 8, 8, 4)"),  # channels last
        (torch.zeros(1, 4, 0, 8), "got shape (1, 4, 0, 8)"),  # empty
        (torch.zeros(1, 4, 8, 8, dtype=torch.int64), "torch.int64"),
        ([[0.0]], "got list"),
    ],
    ids=["3d", "channels", "nhwc", "empty", "integer", "list"],
)
def test_decode_refuses_latents_of_the_wrong_shape(small, z, said):
    with pytest.raises(ConfigError) as info:
        small.decode(z)
    message = str(info.value)
    assert said in message and "(N, 4, h, w)" in message and "2h x 2w" in message


@pytest.mark.parametrize(
    ("x", "said"),
    [
        (torch.rand(1, 1, 16, 16), "got shape (1, 1, 16, 16)"),
        (torch.rand(3, 16, 16), "got shape (3, 16, 16)"),
        (torch.rand(1, 3, 15, 16), "got 15x16 images"),
        (torch.rand(1, 3, 16, 16) * 2 - 1, "outside [0, 1]"),
        (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), "torch.uint8"),
    ],
    ids=["channels", "3d", "odd-size", "range", "uint8"],
)
def test_encode_refuses_images_of_the_wrong_shape(small, x, said):
    with pytest.raises(ConfigError, match="encode()") as info:
        small.encode(x)
    assert said in str(info.value)


def test_bf16_runs_and_is_close_to_fp32(small):
    x, z = images(2, 32), latents(2, 4, 16)
    fp32_latents, fp32_images = small.encode(x), small.decode(z)
    half = AutoencoderKL(small.config)
    half.load_state_dict(small.state_dict())
    half.to(torch.bfloat16)
    assert half.dtype == torch.bfloat16
    decoded = half.decode(z)
    assert decoded.dtype == torch.float32 and decoded.shape == fp32_images.shape
    assert (decoded - fp32_images).abs().mean() < 0.01
    assert (decoded - fp32_images).abs().max() < 0.1
    encoded = half.encode(x)
    assert (encoded - fp32_latents).abs().mean() < 0.02 * fp32_latents.abs().mean() + 0.01


def test_save_pretrained_round_trips_exactly(small, tmp_path):
    small.save_pretrained(tmp_path)
    again = AutoencoderKL.from_pretrained(tmp_path)
    assert again.config == small.config
    z = latents(1, 4, 8)
    assert torch.equal(again.decode(z), small.decode(z))


# ---------------------------------------------------------------------------- bad configs
@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"down_block_types": ["AttnDownEncoderBlock2D", "DownEncoderBlock2D"]},
            "down_block_types",
        ),
        ({"up_block_types": ["UpDecoderBlock2D", "AttnUpDecoderBlock2D"]}, "up_block_types"),
        ({"act_fn": "gelu"}, "act_fn"),
        ({"norm_type": "spatial"}, "norm_type"),
        ({"block_out_channels": [32, 60]}, "norm_num_groups"),
        ({"_class_name": "VQModel"}, "VQModel"),
    ],
    ids=["down-block", "up-block", "activation", "unknown-key", "groups", "class"],
)
def test_an_unsupported_option_is_a_config_error_naming_it(change, named):
    with pytest.raises(ConfigError, match=named):
        config_from_diffusers({**SMALL, **change})


def test_bookkeeping_keys_are_ignored_and_native_configs_are_strict():
    keys = {"_class_name": "AutoencoderKL", "_diffusers_version": "0.42.1", "_name_or_path": "x"}
    config = config_from_diffusers({**SMALL, **keys, "force_upcast": False})
    assert config.block_out_channels == (32, 64)
    with pytest.raises(ConfigError, match="bogus"):
        AutoencoderKL.from_config({**SMALL, "bogus": 1})


def test_an_unsupported_block_through_the_loader(tmp_path):
    ref = reference(SMALL)
    bad = {**SMALL, "down_block_types": ["DownEncoderBlock2D", "AttnDownEncoderBlock2D"]}
    with pytest.raises(ConfigError, match="down_block_types"):
        zoo_core.load(MODEL_ID, weights=save(ref, tmp_path, bad))


def test_a_missing_or_unexpected_tensor_is_named(tmp_path):
    ref = reference(SMALL)
    folder = save(ref, tmp_path)
    state = load_file(folder / WEIGHTS)
    del state["decoder.conv_out.bias"]
    state["encoder.extra.weight"] = torch.zeros(1)
    save_file(state, folder / WEIGHTS)
    with pytest.raises(StateDictMismatchError) as info:
        zoo_core.load(MODEL_ID, weights=folder)
    message = str(info.value)
    assert "missing decoder.conv_out.bias" in message and WEIGHTS in message
    assert "unexpected encoder.extra.weight" in message
    state = ref.state_dict()
    state["quant_conv.weight"] = state["quant_conv.weight"][:4]
    with pytest.raises(StateDictMismatchError, match=r"quant_conv.weight \(file \(4, 8, 1, 1\)"):
        state_dict_from_diffusers(state, config_from_diffusers(SMALL))


def test_the_downsampling_factor_is_the_papers_f():
    config = config_from_diffusers(SD_VAE)
    assert config.downsampling == 8 == 2 ** (len(config.block_out_channels) - 1)
    assert math.isclose(config.scaling_factor, 0.18215)

"""The DDPM Generator: sampling under the seeding rule, guidance, bad input, the likelihood
bound, training, and the published checkpoints through the diffusers converter."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import yaml
from diffusers import DDIMScheduler, UNet2DModel
from zoo_diffusion.ddpm import DDPM, _discretized_gaussian_nll, _normal_kl
from zoo_diffusion.trainer import DDPMTrainer, DDPMTrainerConfig

import zoo_core
from zoo_core.errors import (
    CapabilityError,
    ConfigError,
    UnknownOptionError,
    WeightsUnavailableError,
)
from zoo_core.plugin_manager import reset_plugins
from zoo_core.seeding import Noise

UNET = {
    "sample_size": 8, "in_channels": 1, "out_channels": 1,
    "block_out_channels": [16, 32],
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
    "layers_per_block": 1, "norm_num_groups": 8, "attention_head_dim": 8,
}  # fmt: skip
SCHEDULE = {"num_train_timesteps": 100, "beta_start": 0.001, "beta_end": 0.05}
CIFAR10 = {
    "sample_size": 32, "in_channels": 3, "out_channels": 3,
    "block_out_channels": [128, 256, 256, 256],
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    "layers_per_block": 2, "attention_head_dim": None, "downsample_padding": 0,
    "flip_sin_to_cos": False, "freq_shift": 1, "norm_eps": 1e-6, "norm_num_groups": 32,
}  # fmt: skip
CIFAR10_SCHEDULER = {
    "_class_name": "DDPMScheduler", "beta_start": 0.0001, "beta_end": 0.02,
    "beta_schedule": "linear", "num_train_timesteps": 1000, "clip_sample": True,
    "variance_type": "fixed_large", "trained_betas": None,
}  # fmt: skip


@pytest.fixture(autouse=True)
def fresh():
    reset_plugins()
    yield
    reset_plugins()


@pytest.fixture
def no_plugins_env(monkeypatch):
    for name in ("ZOO_LOAD_PLUGINS", "ZOO_DISABLE_PLUGINS", "ZOO_REGISTRY", "ZOO_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def tiny(num_classes: int | None = None, **schedule) -> DDPM:
    torch.manual_seed(0)
    unet = {**UNET, "num_class_embeds": None if num_classes is None else num_classes + 1}
    model = DDPM.from_config(
        {"unet": unet, "schedule": {**SCHEDULE, **schedule}, "num_classes": num_classes}
    )
    return model.eval()


@pytest.mark.numerics
@pytest.mark.parametrize(
    ("sampler", "extra"),
    [("ddim", {}), ("ddim", {"eta": 1.0}), ("ddpm", {}), ("dpm-solver++", {})],
)
def test_seeding_rule_for_every_sampler(sampler, extra):
    model = tiny()
    kw = {"sampler": sampler, "steps": 6, **extra}
    six = model.sample(6, seed=3, **kw)
    assert six.shape == (6, 1, 8, 8) and six.min() >= 0 and six.max() <= 1
    # The noise is bit-identical whatever the batch; the network's arithmetic may round
    # differently for another batch size (docs/api.md: the seeding rule holds "up to the
    # floating-point nondeterminism of the device").
    close = {"atol": 1e-5, "rtol": 0}
    torch.testing.assert_close(six[:2], model.sample(2, seed=3, **kw), **close)
    torch.testing.assert_close(six, model.sample(6, seed=3, batch_size=4, **kw), **close)
    assert (six - model.sample(6, seed=4, **kw)).abs().max() > 0.1


def test_bf16_autocast_is_close_to_fp32():
    model = tiny()
    fp32 = model.sample(4, seed=0, steps=10)
    bf16 = model.sample(4, seed=0, steps=10, precision="bf16")
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, fp32)
    assert (bf16 - fp32).abs().mean() < 0.02


def test_x_T_fixes_the_starting_noise():
    model = tiny()
    x_T = Noise.for_range(5, 0, 3).randn(1, 8, 8, step=0)
    assert torch.equal(model.sample(3, seed=5), model.sample(3, seed=99, x_T=x_T))


@pytest.mark.numerics
def test_a_shard_with_start_takes_its_own_labels_and_x_T():
    """``sample(n, start=k)`` is samples k..k+n-1 of the larger call; per-sample options
    have one entry per requested sample (indexed by ``Noise.positions``)."""
    model = tiny(num_classes=3)
    labels = [0, 1, 2, 2, 1, 0]
    whole = model.sample(6, seed=4, labels=labels, steps=3)
    part = model.sample(4, seed=4, start=2, labels=labels[2:], steps=3)
    assert torch.allclose(part, whole[2:], atol=1e-5)
    x_T = Noise.for_range(4, 0, 6).randn(1, 8, 8)
    shifted = model.sample(2, seed=0, start=4, x_T=x_T[4:], labels=labels[4:], steps=3)
    assert torch.allclose(shifted, whole[4:], atol=1e-5)


@pytest.mark.numerics
def test_guidance_scale_one_is_the_conditional_model_and_null_is_unconditional():
    model = tiny(num_classes=3)
    labels = [0, 2, 1]
    cond = model.sample(3, seed=0, labels=labels)
    assert torch.allclose(cond, model.sample(3, seed=0, labels=labels, guidance_scale=1.0))
    guided = model.sample(3, seed=0, labels=labels, guidance_scale=3.0)
    assert not torch.allclose(guided, cond)
    assert torch.equal(model.sample(3, seed=0), model.sample(3, seed=0, labels=None))
    # Per-sample labels follow the sample index, whatever the batching.
    again = model.sample(3, seed=0, labels=labels, batch_size=2)
    torch.testing.assert_close(cond, again, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("conditional", "options", "error", "message"),
    [
        (False, {"sampler": "euler"}, ConfigError, "the samplers are: ddim, ddpm, dpm-solver"),
        (False, {"steps": 0}, ConfigError, "steps"),
        (False, {"steps": 101}, ConfigError, "exceeds the 100 training timesteps"),
        (False, {"eta": -0.5}, ConfigError, "eta"),
        (False, {"sampler": "dpm-solver++", "eta": 0.5}, ConfigError, "eta applies to"),
        (False, {"guidance_scale": 2.0}, CapabilityError, "guidance_scale does not apply"),
        (False, {"labels": [0, 1]}, CapabilityError, "labels do not apply"),
        (True, {"labels": [0]}, ConfigError, "1 entries for 2 samples"),
        (True, {"labels": [0, 3]}, ConfigError, "out of range"),
        (False, {"x_T": torch.zeros(2, 1, 4, 4)}, ConfigError, "x_T has shape"),
        (False, {"temperature": 1.0}, UnknownOptionError, "temperature"),
    ],
)
def test_bad_sampling_options(conditional, options, error, message):
    model = tiny(num_classes=3 if conditional else None)
    with pytest.raises(error, match=message):
        model.sample(2, seed=0, **options)


def test_kl_and_decoder_terms_match_closed_forms():
    mean1, var1, mean2, var2 = (
        torch.tensor(0.3),
        torch.tensor(0.5),
        torch.tensor(-0.2),
        torch.tensor(2.0),
    )
    normal = torch.distributions.Normal
    reference = torch.distributions.kl_divergence(
        normal(mean1, var1.sqrt()), normal(mean2, var2.sqrt())
    )
    assert _normal_kl(mean1, var1, mean2, var2) == pytest.approx(float(reference), rel=1e-6)
    # The 8-bit bins of the decoder: the edge bins reach to infinity, all sum to one.
    values = torch.linspace(-1, 1, 256)
    mean, var = torch.full_like(values, 0.1), torch.full_like(values, 0.04)
    probs = torch.exp(-_discretized_gaussian_nll(values, mean, var))
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_log_prob_is_a_finite_bound_in_bits_per_dim():
    model = tiny()
    x = model.sample(2, seed=0)
    bpd = model.bits_per_dim(x)
    assert bpd.shape == (2,) and torch.isfinite(bpd).all() and (bpd > 0).all()
    # A deterministic function of the data: the bound's x_t draws follow the seeding rule.
    assert torch.equal(model.log_prob(x), model.log_prob(x))


def _expected_bound_bits(model: DDPM, s: float) -> float:
    """E[-VLB] in bits/dim, in closed form, for data x_0 ~ N(0, s^2) per dimension (8-bit
    quantized in [-1, 1]) and the exact denoiser E[eps | x_t]: L_T and each L_{t-1} are KLs
    of Gaussians whose expectations over x_0 and x_t are closed forms (the posterior
    variance of x_0 given x_t is v_t = s^2 (1 - a_t) / (a_t s^2 + 1 - a_t)); L_0, the
    discretized decoder, is summed over the 256 bins with Gauss-Hermite nodes over x_0's
    noise."""
    from scipy.stats import norm

    sched = model.schedule
    ab, b = sched.alphas_cumprod.numpy(), sched.betas.numpy()
    small = sched.config.variance_type == "fixed_small"
    total = 0.5 * (ab[-1] * s * s + (1 - ab[-1]) - 1 - np.log(1 - ab[-1]))  # L_T
    for t in range(1, len(ab)):
        beta_tilde = (1 - ab[t - 1]) / (1 - ab[t]) * b[t]
        var = beta_tilde if small else b[t]
        c0 = np.sqrt(ab[t - 1]) * b[t] / (1 - ab[t])  # weight of x_0 in the posterior mean
        v = s * s * (1 - ab[t]) / (ab[t] * s * s + 1 - ab[t])
        total += 0.5 * (np.log(var / beta_tilde) + beta_tilde / var - 1 + c0**2 * v / var)
    var0 = (1 - ab[0]) / (1 - ab[1]) * (1 - ab[1] / ab[0]) if small else b[0]
    bins, half = np.linspace(-1, 1, 256), 1 / 255
    mass = norm.cdf(bins + half, scale=s) - norm.cdf(bins - half, scale=s)
    mass[0], mass[-1] = norm.cdf(bins[0] + half, scale=s), norm.sf(bins[-1] - half, scale=s)
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    for x0, p in zip(bins, mass, strict=True):
        x_t = np.sqrt(ab[0]) * x0 + np.sqrt(1 - ab[0]) * nodes
        mean = np.sqrt(ab[0]) * s * s * x_t / (ab[0] * s * s + 1 - ab[0])
        hi = 1.0 if x0 > 0.999 else norm.cdf((x0 + half - mean) / np.sqrt(var0))
        lo = 0.0 if x0 < -0.999 else norm.cdf((x0 - half - mean) / np.sqrt(var0))
        total += p * np.sum(weights * -np.log(np.maximum(hi - lo, 1e-300)))
    return total / np.log(2)


@pytest.mark.parametrize("variance_type", ["fixed_small", "fixed_large"])
def test_log_prob_is_the_closed_form_bound_of_an_exact_denoiser(variance_type):
    """Gaussian data and the exact denoiser E[eps | x_t]: the bound's expectation is a
    closed form (about 8.06 bits/dim with fixed_small, 7.31 with fixed_large at s = 0.3 and
    DDPM's schedule). The Monte Carlo bound of 512 images lands within 0.02 bits/dim; a
    wrong KL, posterior, decoder or prior term misses by far more."""
    s = 0.3
    model = DDPM.from_config({
        "unet": UNET,
        "schedule": {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02,
                     "variance_type": variance_type},
    }).eval()  # fmt: skip
    abar = model.schedule.alphas_cumprod

    class ExactDenoiser(torch.nn.Module):
        def forward(self, x, t, labels=None):  # E[eps | x_t] for x_0 ~ N(0, s^2)
            a = abar[t].view(-1, 1, 1, 1).to(x.dtype)
            return (1 - a).sqrt() * x / (a * s * s + 1 - a)

    model.unet = ExactDenoiser()
    x0 = (torch.randn(512, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * s).clamp(-1, 1)
    x = torch.round((x0 + 1) / 2 * 255) / 255  # 8-bit images in [0, 1]
    bound = model.bits_per_dim(x).double().mean().item()
    assert bound == pytest.approx(_expected_bound_bits(model, s), abs=0.02)


def test_training_step_lowers_the_loss_and_reaches_every_parameter():
    model = tiny(num_classes=3).train()
    trainer = DDPMTrainer(model, DDPMTrainerConfig(min_snr_gamma=5.0))
    torch.manual_seed(1)
    batch = (torch.rand(8, 1, 8, 8), torch.randint(0, 3, (8,)))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(30):
        torch.manual_seed(step % 3)  # the same few noise draws, so the loss can only fit
        loss = trainer.training_step(batch, step, "model")["loss"]
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
            assert silent == []
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) < 0.7 * sum(losses[:3])


def test_save_and_load_round_trip(tmp_path):
    model = tiny(num_classes=3)
    model.save_pretrained(tmp_path / "m")
    again = zoo_core.from_pretrained(tmp_path / "m")
    assert isinstance(again, DDPM) and again.config == model.config
    assert torch.equal(again.sample(2, seed=1, labels=1), model.sample(2, seed=1, labels=1))


# ------------------------------------------------------------------ the published weights
@pytest.fixture(scope="module")
def cifar10_repo(tmp_path_factory):
    """A local copy laid out like google/ddpm-cifar10-32, with random weights saved by
    diffusers itself."""
    folder = tmp_path_factory.mktemp("ddpm-cifar10-32")
    torch.manual_seed(0)
    reference = UNet2DModel(**CIFAR10).eval()
    with torch.no_grad():
        # Random weights make the sampling map chaotic: float32 rounding differences of 1e-7
        # between two correct implementations (diffusers keeps its schedule in float32, we in
        # float64) grow about 1e4-fold over 20 DDIM steps, to 1.2e-3 (measured here). A
        # smaller output layer keeps the random network's ε near the size a trained one has.
        reference.conv_out.weight.mul_(0.2)
        reference.conv_out.bias.mul_(0.2)
    reference.save_pretrained(folder, safe_serialization=True)
    (folder / "scheduler_config.json").write_text(json.dumps(CIFAR10_SCHEDULER))
    return folder, reference


def test_cifar10_loads_from_a_local_copy_and_ddim_matches_diffusers(cifar10_repo):
    folder, reference = cifar10_repo
    model = zoo_core.load("ddpm-cifar10", weights=folder)
    assert model.card.id == "ddpm-cifar10" and model.config.schedule.variance_type == "fixed_large"
    x_T = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    ours = model.sample(2, seed=0, sampler="ddim", steps=20, x_T=x_T)
    scheduler = DDIMScheduler.from_config(CIFAR10_SCHEDULER)
    scheduler.set_timesteps(20)
    x = x_T.clone()
    with torch.no_grad():
        for t in scheduler.timesteps:
            x = scheduler.step(reference(x, t).sample, t, x, eta=0.0).prev_sample
    theirs = ((x + 1) / 2).clamp(0, 1)
    assert (ours - theirs).abs().max().item() < 1e-3


def test_offline_with_an_empty_cache_names_the_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as info:
        zoo_core.load("ddpm-cifar10")
    message = str(info.value)
    assert "google/ddpm-cifar10-32@main" in message and "zoo download ddpm-cifar10" in message
    assert "config.json" in message


def test_a_repo_without_its_scheduler_config_is_refused(cifar10_repo, tmp_path, monkeypatch):
    folder, _ = cifar10_repo
    registry = tmp_path / "extra.yaml"
    card = yaml.safe_load((zoo_core.registry.builtin_registry_path()).read_text())["ddpm-cifar10"]
    card["weights"]["files"] = ["config.json", "diffusion_pytorch_model.safetensors"]
    registry.write_text(yaml.safe_dump({"ddpm-noscheduler": card}))
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    with pytest.raises(ConfigError, match="scheduler_config.json"):
        zoo_core.load("ddpm-noscheduler", weights=folder)


def test_the_published_configuration_has_the_papers_size(cifar10_repo):
    folder, _ = cifar10_repo
    model = zoo_core.load("ddpm-cifar10", weights=folder)
    params = sum(p.numel() for p in model.parameters())
    assert math.isclose(params / 1e6, 35.7, abs_tol=0.1)  # Ho et al. 2020, appendix B


def test_bundled_ddpm_fashion_draws_the_classes_it_is_asked_for(no_plugins_env):
    """The bundled model's class-conditional samples look like their class: the mean of each
    class's samples is nearest (cosine) to the mean test image of that class, for at least 9
    of the 10 Fashion-MNIST classes (a wrong label embedding, guidance or sampler scores ~1)."""
    from zoo_core.data import load_dataset

    model = zoo_core.load("ddpm-fashion")
    assert model.card.training["steps"] == 8000
    labels = [c for c in range(10) for _ in range(6)]
    samples = model.sample(60, seed=0, labels=labels, steps=20)
    test = load_dataset("fashion-mnist", split="test")
    means = torch.stack([test.x[test.y == c].mean(0).flatten() for c in range(10)])  # (10, 784)
    drawn = samples.view(10, 6, -1).mean(1)  # (10, 784)
    similarity = (
        torch.nn.functional.normalize(drawn, dim=1) @ torch.nn.functional.normalize(means, dim=1).T
    )
    hits = (similarity.argmax(1) == torch.arange(10)).sum().item()
    assert hits >= 9, similarity.argmax(1).tolist()

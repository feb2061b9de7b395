"""StyleGAN2: the modulated convolution against a per-sample reference and its closed-form
variance, the FIR resampling, truncation, style mixing and ``w_avg``, the seeding rule,
conditioning, interpolation in ``w``, the minibatch standard deviation, persistence, the
recipe, and a few training steps on Fashion-MNIST."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from zoo_gan.base import GAN
from zoo_gan.stylegan import (
    MinibatchStd,
    StyleGAN,
    StyleGANDiscriminator,
    StyleGANDiscriminatorConfig,
    SynthesisLayer,
    blur,
    modulated_conv2d,
    upsample2d,
)
from zoo_gan.trainer import StyleGANTrainer

import zoo_core
from zoo_core.errors import CapabilityError, ConfigError
from zoo_core.seeding import Noise
from zoo_core.training import load_recipe, train
from zoo_core.training.config import validate_recipe

TINY = {"image_size": 16, "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "width": 4,
        "channel_max": 16}  # fmt: skip
RECIPE = Path(__file__).parents[1] / "recipes" / "stylegan-fashion.yaml"


def build(**changes) -> StyleGAN:
    """A tiny StyleGAN whose noise inputs matter (their strengths start at 0 in the paper)
    and whose ``w_avg`` is not 0, in eval mode."""
    torch.manual_seed(0)
    model = StyleGAN.from_config({**TINY, **changes})
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, SynthesisLayer):
                layer.noise_strength.normal_(0, 0.5)
        model.w_avg.normal_()
    return model.eval()


def reference_modconv(x, weight, styles, demodulate, eps=1e-8):
    """Eq. 1-3 one sample at a time: scale the weights, demodulate, convolve."""
    out = []
    for b in range(x.shape[0]):
        w = weight * styles[b][None, :, None, None]  # (O, I, k, k)
        if demodulate:
            w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + eps).sqrt()
        out.append(F.conv2d(x[b : b + 1], w, padding=weight.shape[-1] // 2))
    return torch.cat(out)


# --------------------------------------------------------------------- building blocks
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("kernel", [3, 1])
def test_modulated_conv_equals_a_per_sample_reference(fused, demodulate, kernel):
    torch.manual_seed(0)  # float64: what is compared is the arithmetic, not its rounding
    x = torch.randn(3, 5, 9, 9, dtype=torch.float64)
    weight = torch.randn(4, 5, kernel, kernel, dtype=torch.float64)
    styles = torch.randn(3, 5, dtype=torch.float64) * torch.tensor([[0.1], [1.0], [3.0]])
    ours = modulated_conv2d(x, weight, styles, demodulate=demodulate, fused=fused)
    theirs = reference_modconv(x, weight, styles, demodulate)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("fused", [True, False])
def test_demodulation_gives_unit_variance_for_unit_variance_input(fused):
    """For x ~ N(0, I), Var y = sum of the squared effective weights (the gradient of an
    interior output), which demodulation sets to 1 whatever the style (eq. 3)."""
    torch.manual_seed(1)
    weight = torch.randn(4, 6, 3, 3) * 5
    styles = torch.rand(2, 6) * 10
    x = torch.zeros(2, 6, 7, 7, requires_grad=True)
    y = modulated_conv2d(x, weight, styles, fused=fused)
    for b in range(2):
        for o in range(4):
            (grad,) = torch.autograd.grad(y[b, o, 3, 3], x, retain_graph=True)
            assert math.isclose(grad.square().sum().item(), 1.0, abs_tol=1e-5)
    undemodulated = modulated_conv2d(x, weight, styles, demodulate=False, fused=fused)
    (grad,) = torch.autograd.grad(undemodulated[0, 0, 3, 3], x)
    assert grad.square().sum() > 100  # without eq. 3 the variance follows the scales
    # And empirically: the interior of a large unit-variance input.
    with torch.no_grad():
        out = modulated_conv2d(torch.randn(2, 6, 66, 66), weight, styles, fused=fused)
    assert torch.allclose(out[:, :, 1:-1, 1:-1].std(dim=(2, 3)), torch.ones(2, 4), atol=0.08)


def test_fir_resampling_keeps_a_constant_and_halves_or_doubles_the_side():
    x = torch.full((1, 2, 8, 8), 3.0)
    up = upsample2d(x)  # gain 4 for the zeros inserted
    assert up.shape == (1, 2, 16, 16)
    torch.testing.assert_close(up[..., 2:-2, 2:-2], torch.full((1, 2, 12, 12), 3.0))
    assert up[0, 0, 0, 0] < 3.0  # the border sees the zero padding
    blurred = blur(x, 2)  # unit gain, side + 2 * 2 - 3
    assert blurred.shape == (1, 2, 9, 9)
    torch.testing.assert_close(blurred[..., 2:-2, 2:-2], torch.full((1, 2, 5, 5), 3.0))
    ramp = torch.arange(8.0).repeat(8, 1)[None, None]  # the filter is symmetric: no shift
    mid = upsample2d(ramp)[0, 0, 8, 4:12]
    torch.testing.assert_close(mid, torch.tensor([1.75, 2.25, 2.75, 3.25, 3.75, 4.25, 4.75,
                                                  5.25]))  # fmt: skip


def test_shapes_and_the_number_of_styles():
    model = build(image_size=28)  # 7 -> 14 -> 28: a 7x7 constant, 2k + 2 = 6 styles
    assert model.synthesis.const.shape[1:] == (7, 7)
    assert model.num_ws == 6 and len(model.synthesis.convs) == 5
    x = model.synthesize(torch.randn(2, 8), noise=Noise.for_range(0, 0, 2))
    assert x.shape == (2, 1, 28, 28)
    d = StyleGANDiscriminator(StyleGANDiscriminatorConfig(width=4, channel_max=16), model.config)
    assert d(x).shape == (2,)
    assert not StyleGANDiscriminatorConfig().uses_batch_norm
    with pytest.raises(ConfigError, match="image_size"):
        StyleGAN.from_config({**TINY, "image_size": 18})


# --------------------------------------------------------------------- truncation, w_avg, mixing
def test_truncation_zero_gives_w_avg_and_only_the_noise_varies():
    model = build()
    z = torch.randn(5, 8) * 3
    assert torch.equal(model.to_w(z, truncation=0.0), model.w_avg.expand(5, -1))
    half = model.to_w(z, truncation=0.5)
    torch.testing.assert_close(half, model.w_avg + 0.5 * (model.to_w(z) - model.w_avg))
    same_noise = Noise(0, torch.zeros(5, dtype=torch.int64))  # one noise draw for every row
    x = model.synthesize(z, truncation=0.0, noise=same_noise)
    assert (x - x[:1]).abs().max() < 1e-6  # every z gives the same image
    other = model.synthesize(z, truncation=0.0, noise=Noise(1, torch.zeros(5, dtype=torch.int64)))
    assert (other - x).abs().max() > 1e-2  # another noise seed differs ...
    with torch.no_grad():
        for layer in model.synthesis.convs:
            layer.noise_strength.zero_()
    quiet = model.synthesize(z, truncation=0.0, noise=same_noise)
    again = model.synthesize(z, truncation=0.0, noise=Noise(1, torch.zeros(5, dtype=torch.int64)))
    torch.testing.assert_close(quiet, again, atol=0, rtol=0)  # ... only through the noise


def test_w_avg_moves_in_training_only():
    model = build(w_avg_beta=0.9)
    z = torch.randn(6, 8)
    before = model.w_avg.clone()
    model.synthesize(z)  # eval
    model.train()
    model.synthesize(z, noise=Noise.for_range(0, 0, 6))  # seeded: never moves it
    assert torch.equal(model.w_avg, before)
    w = model.to_w(z)
    model.synthesize(z)  # training
    expected = w.mean(0) + 0.9 * (before - w.mean(0))
    torch.testing.assert_close(model.w_avg, expected)
    model.sample(4, seed=0)  # sampling a model in train mode leaves it alone too
    torch.testing.assert_close(model.w_avg, expected)


def _styles_seen(model: StyleGAN, z: torch.Tensor, noise=None) -> torch.Tensor:
    seen = []
    hook = model.synthesis.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    try:
        model.synthesize(z, noise=noise)
    finally:
        hook.remove()
    return seen[0]  # (B, num_ws, w_dim)


def test_style_mixing_happens_in_training_only():
    model = build(mixing_prob=1.0)
    z = torch.randn(3, 8)
    w = model.to_w(z)
    for ws in (_styles_seen(model, z), _styles_seen(model.train(), z, Noise.for_range(0, 0, 3))):
        assert torch.equal(ws, w[:, None].expand_as(ws))  # eval, or seeded sampling: one w
    cutoffs = set()
    for _ in range(40):
        ws = _styles_seen(model.train(), z)
        assert torch.equal(ws[:, 0], w)  # the first layers keep z's w ...
        mixed = (ws != w[:, None]).any(-1).all(0)  # (num_ws,): layers that took another w
        cutoff = int(mixed.int().argmax())
        assert mixed[cutoff:].all() and not mixed[:cutoff].any()  # ... up to one crossover
        cutoffs.add(cutoff)
    assert cutoffs == set(range(1, model.num_ws))  # drawn uniformly from 1..num_ws - 1
    never = build(mixing_prob=0.0).train()
    ws = _styles_seen(never, z)
    assert torch.equal(ws, ws[:, :1].expand_as(ws))


# --------------------------------------------------------------------- the Generator contract
@pytest.mark.numerics
def test_seeding_rule():
    model = build()
    eight = model.sample(8, seed=0)
    assert eight.shape == (8, 1, 16, 16) and eight.min() >= 0 and eight.max() <= 1
    close = {"atol": 1e-5, "rtol": 0}  # grouped convolutions of another batch may round apart
    torch.testing.assert_close(eight[:4], model.sample(4, seed=0), **close)
    torch.testing.assert_close(model.sample(4, seed=0, start=2), eight[2:6], **close)
    torch.testing.assert_close(model.sample(8, seed=0, batch_size=3), eight, **close)
    torch.testing.assert_close(model.train().sample(8, seed=0), eight, **close)
    assert model.training
    assert (model.sample(8, seed=1) - eight).abs().max() > 0.05


def test_the_conditional_instance_declares_it():
    plain, conditional = build(), build(num_classes=3)
    assert "conditional" not in plain.capabilities and "conditional" not in StyleGAN.capabilities
    assert conditional.capabilities == {"sample", "interpolate", "conditional"}
    with pytest.raises(CapabilityError, match="conditional.: labels do not apply"):
        plain.sample(2, seed=0, labels=[0, 1])
    with pytest.raises(ConfigError, match="out of range"):
        conditional.sample(2, seed=0, labels=[0, 3])
    x = conditional.sample(3, seed=0, labels=[0, 1, 2])
    assert (x - conditional.sample(3, seed=0, labels=[1, 2, 0])).abs().max() > 1e-3
    d = StyleGANDiscriminator(StyleGANDiscriminatorConfig(width=4, channel_max=16),
                              conditional.config)  # fmt: skip
    with torch.no_grad():
        d.embed.normal_(0, 3)
    assert not torch.allclose(d(x, torch.tensor([0, 1, 2])), d(x, torch.tensor([2, 0, 1])))


@pytest.mark.numerics
def test_interpolation_in_w():
    model = build()
    path = model.interpolate(3, 5, 5, space="w", seed=7)
    assert path.shape == (5, 1, 16, 16)
    z_end = {s: Noise.for_range(s, 0, 1).randn(8, stream=0) for s in (3, 5)}
    close = {"atol": 1e-5, "rtol": 0}
    torch.testing.assert_close(path[0], model.sample(1, seed=7, z=z_end[3])[0], **close)
    torch.testing.assert_close(path[-1], model.sample(1, seed=7, z=z_end[5])[0], **close)
    # The middle is the image of the middle of the two w (not of the middle of the z).
    w = model.to_w(torch.cat([z_end[3], z_end[5]]))
    mid = w.mean(0, keepdim=True)[:, None].expand(-1, model.num_ws, -1)
    expected = model.to_output(model.synthesis(mid, Noise(7, torch.zeros(1, dtype=torch.int64))))
    torch.testing.assert_close(path[2], expected[0], **close)
    in_z = model.interpolate(3, 5, 5, seed=7)
    torch.testing.assert_close(in_z, GAN.interpolate(model, 3, 5, 5, seed=7), atol=0, rtol=0)
    assert (in_z[2] - path[2]).abs().max() > 1e-3
    with pytest.raises(ConfigError, match="space"):
        model.interpolate(3, 5, 5, space="x")
    with pytest.raises(ConfigError, match="linear"):
        model.interpolate(3, 5, 5, space="w", method="slerp")


# --------------------------------------------------------------------- the discriminator
def test_minibatch_std_follows_its_group():
    torch.manual_seed(0)
    layer = MinibatchStd(group_size=4, num_channels=1)
    x = torch.randn(8, 3, 2, 2)
    out = layer(x)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], x)
    group = x[0::2]  # sample i is in group i mod (8 / 4)
    expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(out[0, 3], expected.expand(2, 2))
    changed = x.clone()
    changed[4] += torch.randn(3, 2, 2)
    moved = (layer(changed)[:, 3] != out[:, 3]).flatten(1).all(1)
    assert moved.tolist() == [True, False] * 4
    assert MinibatchStd(4, 1)(torch.randn(6, 3, 2, 2)).shape == (6, 4, 2, 2)  # groups of 3


# --------------------------------------------------------------------- persistence and training
def test_save_and_load_round_trip_is_bit_exact(tmp_path):
    model = build(num_classes=3)
    model.save_pretrained(tmp_path / "m")
    loaded = zoo_core.from_pretrained(tmp_path / "m")
    assert type(loaded) is StyleGAN and "conditional" in loaded.capabilities
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys() and "w_avg" in ours
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    labels = [0, 1, 2, 0]
    samples = model.sample(4, seed=2, labels=labels, truncation=0.7)
    assert torch.equal(samples, loaded.sample(4, seed=2, labels=labels, truncation=0.7))


def test_every_parameter_of_both_players_gets_a_gradient():
    model = build(num_classes=3).train()
    config = StyleGANTrainer.Config.model_validate(
        {"r1_gamma": 1.0, "discriminator": {"width": 4, "channel_max": 16}}
    )
    trainer = StyleGANTrainer(model, config)
    batch = (torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 2, 0]))
    for name in trainer.optimizers:
        for p in trainer.parameters(name):
            p.grad = None
        metrics = trainer.training_step(batch, 0, name)
        assert name == "generator" or "r1" in metrics  # the first discriminator step has R1
        metrics["loss"].backward()
        for p in trainer.parameters(name):
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_the_recipe_is_small_enough_to_bundle():
    recipe = load_recipe(RECIPE)
    assert recipe.model_id == "stylegan-fashion" and recipe.architecture == "stylegan"
    trainer_config = StyleGANTrainer.Config.model_validate(recipe.trainer)
    assert trainer_config.r1_every == 16
    model = StyleGAN.from_config(recipe.config)
    count = sum(t.numel() for t in model.state_dict().values())
    assert count > 0.9e6 and count * 4 < 10e6  # float32 safetensors under 10 MB


def test_a_few_training_steps_on_fashion_mnist_reach_every_parameter(tmp_path):
    config = {**TINY, "image_size": 28}
    data = {
        "architecture": "stylegan",
        "config": config,
        "trainer": {"r1_gamma": 0.5, "r1_every": 2,
                    "discriminator": {"width": 4, "channel_max": 16}},
        "dataset": "fashion-mnist",  # Debian's dataset-fashion-mnist; fails where it is absent
        "train": {
            "steps": 3,
            "batch_size": 8,
            "optimizers": {
                "discriminator": {"name": "adam", "lr": 0.0025, "betas": [0.0, 0.99]},
                "generator": {"name": "adam", "lr": 0.0025, "betas": [0.0, 0.99]},
            },
            "ema": None,
            "log_every": 1,
            "checkpoint_every": 100,
            "seed": 5,
        },
    }  # fmt: skip
    result = train(validate_recipe(data), tmp_path / "run", progress=False)
    trained = zoo_core.from_pretrained(result.model_dir)
    torch.manual_seed(5)  # the loop seeds torch, then builds the model first
    initial = StyleGAN.from_config(config)
    for name, p in trained.named_parameters():
        # Adam moves every parameter that got a non-zero gradient by about lr.
        assert torch.isfinite(p).all() and not torch.equal(p, initial.get_parameter(name)), name
    assert trained.w_avg.abs().sum() > 0

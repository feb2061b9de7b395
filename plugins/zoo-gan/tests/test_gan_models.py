"""The GAN Generators (mlp-gan, dcgan, cgan): the seeding rule, the sample options and their
bad input, interpolation, packing, the projection discriminator, and persistence."""

from __future__ import annotations

import math

import pytest
import torch
from zoo_gan.cgan import CGAN, CGANDiscriminatorConfig, ProjectionDiscriminator
from zoo_gan.dcgan import DCGAN, DCGANDiscriminator, DCGANDiscriminatorConfig
from zoo_gan.mlp_gan import MLPGAN, Maxout, MLPDiscriminator, MLPDiscriminatorConfig

import zoo_core
from zoo_core.errors import CapabilityError, ConfigError, UnknownOptionError
from zoo_core.generator import Generator
from zoo_core.interpolation import slerp
from zoo_core.seeding import Noise

# A larger initial scale than the papers' 0.02, so that untrained outputs vary visibly.
SMALL = {
    "mlp-gan": (MLPGAN, {"hidden": 32, "layers": 2, "init_std": 0.5}),
    "dcgan": (DCGAN, {"image_size": 28, "z_dim": 16, "width": 8, "init_std": 0.3}),
    "cgan": (CGAN, {"image_size": 28, "z_dim": 16, "width": 8, "num_classes": 10,
                    "init_std": 0.3}),
}  # fmt: skip


def build(name: str) -> Generator:
    torch.manual_seed(0)
    cls, config = SMALL[name]
    model = cls.from_config(config)
    # Non-trivial running statistics: sampling must use them, not the batch's.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
            if isinstance(module, torch.nn.Embedding):  # cgan's per-class scales and shifts
                module.weight.add_(torch.randn_like(module.weight) * 0.5)
    return model


def labels_for(name: str, n: int) -> dict:
    return {"labels": [i % 10 for i in range(n)]} if name == "cgan" else {}


@pytest.mark.numerics
@pytest.mark.parametrize("name", sorted(SMALL))
def test_seeding_rule_prefix_start_and_batch_size(name):
    model = build(name).train()  # sampling switches to eval itself, and restores the mode
    full = model.sample(8, seed=3, **labels_for(name, 8))
    assert model.training
    assert torch.equal(model.sample(8, seed=3, **labels_for(name, 8)), full)
    # The latents are bit-identical whatever the batch; the network's arithmetic may round
    # differently for another batch shape (docs/api.md: the seeding rule holds "up to the
    # floating-point nondeterminism of the device").
    close = {"atol": 1e-5, "rtol": 0}
    torch.testing.assert_close(model.sample(4, seed=3, **labels_for(name, 4)), full[:4], **close)
    batched = model.sample(8, seed=3, batch_size=3, **labels_for(name, 8))
    torch.testing.assert_close(batched, full, **close)
    labels = {"labels": labels_for(name, 8)["labels"][3:]} if name == "cgan" else {}
    torch.testing.assert_close(model.sample(5, seed=3, start=3, **labels), full[3:], **close)
    assert (model.sample(8, seed=4, **labels_for(name, 8)) - full).abs().max() > full.std() / 10


@pytest.mark.parametrize("name", sorted(SMALL))
def test_samples_are_in_the_canonical_form(name):
    model = build(name)
    x = model.sample(6, seed=0, **labels_for(name, 6))
    if name == "mlp-gan":
        assert x.shape == (6, 2)
    else:
        assert x.shape == (6, 1, 28, 28)
        assert x.min() >= 0 and x.max() <= 1
    assert x.dtype == torch.float32


@pytest.mark.numerics
def test_latents_come_from_the_seeded_noise_and_z_replaces_them():
    model = build("dcgan")
    z = Noise.for_range(5, 0, 4).randn(16, stream=0)
    assert torch.equal(model.sample(4, seed=5), model.sample(4, seed=99, z=z))
    # z is per requested sample: a shard drawn with start= takes its own rows
    shard = model.sample(2, seed=0, start=7, z=z[2:])
    torch.testing.assert_close(shard, model.sample(4, seed=5)[2:], atol=1e-5, rtol=0)


def test_truncation_pulls_latents_toward_their_mean():
    model = build("dcgan")
    z = torch.randn(3, 16)
    assert torch.equal(model.sample(3, z=z, truncation=0.5), model.sample(3, z=z * 0.5))
    mlp = build("mlp-gan")
    collapsed = mlp.sample(5, seed=0, truncation=1e-9)
    assert torch.allclose(collapsed, collapsed[:1].expand(5, -1), atol=1e-5)


def test_cgan_draws_the_class_asked_for():
    model = build("cgan")
    z = torch.randn(1, 16).expand(4, -1)
    x = model.sample(4, z=z.contiguous(), labels=[0, 1, 0, 1])
    assert torch.equal(x[0], x[2]) and torch.equal(x[1], x[3])
    assert not torch.allclose(x[0], x[1])
    assert torch.equal(model.sample(3, seed=1, labels=7), model.sample(3, seed=1, labels=[7] * 3))


@pytest.mark.numerics
def test_cgan_without_labels_draws_classes_uniformly_from_the_seed():
    model = build("cgan")
    drawn = model._labels(Noise.for_range(4, 0, 5000), None)
    counts = torch.bincount(drawn, minlength=10)
    assert counts.sum() == 5000 and counts.min() > 420 and counts.max() < 580  # 500 ± 3.6σ
    labels = drawn[:6].tolist()
    assert torch.equal(model.sample(6, seed=4), model.sample(6, seed=4, labels=labels))
    shard = model.sample(3, seed=4, start=3)
    torch.testing.assert_close(shard, model.sample(6, seed=4)[3:], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("cgan", {"labels": [1, 2, 3]}, "labels has 3 entries for 2 samples"),
        ("cgan", {"labels": [0, 10]}, r"labels \[10\] out of range: classes are 0..9"),
        ("cgan", {"labels": -1}, r"labels \[-1\] out of range"),
        ("dcgan", {"truncation": 0.0}, "truncation: Input should be greater than 0"),
        ("dcgan", {"truncation": 1.5}, "truncation: Input should be less than or equal to 1"),
        ("dcgan", {"z": torch.zeros(2, 15)}, r"z has shape \(2, 15\), expected \(2, 16\)"),
        ("mlp-gan", {"z": torch.zeros(3, 2)}, r"z has shape \(3, 2\), expected \(2, 2\)"),
    ],
)
def test_bad_sample_options_are_config_errors(name, options, message):
    with pytest.raises(ConfigError, match=message):
        build(name).sample(2, seed=0, **options)


def test_an_unknown_option_is_named():
    with pytest.raises(UnknownOptionError, match="accepts: labels, truncation, z"):
        build("dcgan").sample(2, seed=0, steps=5)


@pytest.mark.parametrize("size", [30, 36, 130, 4])
def test_dcgan_image_size_must_double_from_4_to_7(size):
    with pytest.raises(ConfigError, match=f"image_size {size} must be s0"):
        DCGAN.from_config({"image_size": size})


@pytest.mark.parametrize(("size", "s0", "k"), [(28, 7, 2), (32, 4, 3), (64, 4, 4)])
def test_dcgan_shapes_follow_the_doubling(size, s0, k):
    model = DCGAN.from_config({"image_size": size, "channels": 3, "width": 4, "z_dim": 8})
    assert (model.s0, model.top) == (s0, 4 * 2 ** (k - 1))
    assert model.sample(2, seed=0).shape == (2, 3, size, size)
    d = DCGANDiscriminator(DCGANDiscriminatorConfig(width=4), model.config)
    assert d(torch.zeros(5, 3, size, size)).shape == (5,)


def test_dcgan_initialization_is_the_papers():
    torch.manual_seed(0)
    model = DCGAN.from_config({"width": 64})
    weights = model.blocks[0].weight  # (128, 64, 4, 4): 131k draws
    assert abs(weights.std().item() - 0.02) < 0.001 and abs(weights.mean().item()) < 0.001
    scale = model.project_norm.weight
    assert abs(scale.mean().item() - 1) < 0.01 and 0.01 < scale.std().item() < 0.03


# --------------------------------------------------------------------- interpolation
@pytest.mark.numerics
def test_interpolation_ends_at_the_seeds_samples_and_slerp_keeps_the_norm():
    model = build("dcgan")
    path = model.interpolate(3, 8, steps=5)
    assert path.shape == (5, 1, 28, 28)
    assert torch.allclose(path[0], model.sample(1, seed=3)[0], atol=1e-6)
    assert torch.allclose(path[-1], model.sample(1, seed=8)[0], atol=1e-6)
    a, b = torch.randn(16, dtype=torch.float64), torch.randn(16, dtype=torch.float64) * 2
    t = torch.linspace(0, 1, 7, dtype=torch.float64)[:, None]
    points = slerp(a, b, t)
    expected = a.norm() + (b.norm() - a.norm()) * t[:, 0]
    assert torch.allclose(points.norm(dim=1), expected)
    # on the great circle: the angle to a grows linearly in t
    angle = torch.arccos((points @ a) / (points.norm(dim=1) * a.norm()))
    total = torch.arccos(a @ b / (a.norm() * b.norm()))
    assert torch.allclose(angle, total * t[:, 0], atol=1e-7)


@pytest.mark.numerics
def test_linear_interpolation_is_the_midpoint_latent():
    model = build("mlp-gan")
    a, b = torch.tensor([1.0, -1.0]), torch.tensor([0.0, 3.0])
    mid = model.interpolate(a, b, steps=3, method="linear")[1]
    assert torch.allclose(mid, model.sample(1, z=((a + b) / 2)[None])[0], atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 1}, "steps must be an integer of at least 2"),
        ({"steps": 3, "method": "cubic"}, "method must be 'slerp' or 'linear'"),
    ],
)
def test_bad_interpolation_is_a_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build("dcgan").interpolate(0, 1, **kwargs)


def test_labels_on_an_unconditional_model_is_a_capability_error():
    model = build("dcgan")
    with pytest.raises(CapabilityError, match="'conditional': labels do not apply"):
        model.sample(2, seed=0, labels=[1, 2])
    with pytest.raises(CapabilityError, match="'conditional': labels do not apply"):
        model.interpolate(0, 1, steps=3, labels=2)


def test_interpolation_end_point_of_the_wrong_shape():
    with pytest.raises(ConfigError, match=r"a has shape \(3,\), expected \(16,\)"):
        build("dcgan").interpolate(torch.zeros(3), 1, steps=3)


# --------------------------------------------------------------------- discriminators
def test_maxout_is_the_maximum_of_its_pieces():
    torch.manual_seed(0)
    layer = Maxout(3, 4, pieces=5)
    x = torch.randn(6, 3)
    pieces = (x @ layer.linear.weight.T + layer.linear.bias).view(6, 4, 5)
    # F.linear adds the bias inside the matrix product: equal up to its rounding
    torch.testing.assert_close(layer(x), pieces.max(-1).values, rtol=0, atol=1e-6)


@pytest.mark.numerics
def test_packed_discriminator_scores_consecutive_samples_together():
    torch.manual_seed(0)
    d = MLPDiscriminator(MLPDiscriminatorConfig(packing=3, hidden=16), MLPGAN.Config())
    assert d.net[0].linear.in_features == 6
    x = torch.randn(9, 2)
    out = d(x)
    assert out.shape == (3,)
    assert torch.allclose(out[1], d.net(torch.cat([x[3], x[4], x[5]]))[0])
    with pytest.raises(ConfigError, match="10 samples does not split into packs of 3"):
        d(torch.randn(10, 2))


def test_projection_discriminator_is_psi_plus_the_label_projection():
    torch.manual_seed(0)
    g = build("cgan")
    d = ProjectionDiscriminator(CGANDiscriminatorConfig(width=8), g.config).eval()
    x, y = torch.rand(4, 1, 28, 28) * 2 - 1, torch.tensor([0, 3, 3, 9])
    phi = d.features(x).flatten(1)
    expected = d.psi(phi)[:, 0] + (d.embed(y) * phi).sum(1)
    assert torch.allclose(d(x, y), expected, atol=1e-5)
    assert not torch.allclose(d(x, y), d(x, torch.tensor([1, 3, 3, 9])))
    # spectral normalization: the largest singular value of each weight is about 1
    weight = d.psi.weight
    assert math.isclose(torch.linalg.matrix_norm(weight, ord=2).item(), 1.0, rel_tol=0.05)


# --------------------------------------------------------------------- persistence
@pytest.mark.parametrize("name", sorted(SMALL))
def test_save_and_load_round_trip_is_bit_exact(name, tmp_path):
    model = build(name)
    model.save_pretrained(tmp_path / name)
    loaded = zoo_core.from_pretrained(tmp_path / name)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    options = labels_for(name, 5)
    assert torch.equal(loaded.sample(5, seed=2, **options), model.sample(5, seed=2, **options))
    assert ("conditional" in loaded.capabilities) == (name == "cgan")

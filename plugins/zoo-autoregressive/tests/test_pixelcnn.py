"""PixelCNN: the causal mask without a blind spot, likelihoods against their closed forms
(normalised over every image of a tiny shape), sampling (the seeding rule, the cached network
equal to the whole one, the draws following the model, greedy decoding), inpainting, save and
load, the trainer and the errors."""

from __future__ import annotations

import math

import pytest
import torch
from zoo_autoregressive.discretized import (
    LEVELS,
    logistic_log_prob,
    mixture_log_prob,
    param_count,
    to_values,
)
from zoo_autoregressive.pixelcnn import LABEL_STREAM, PixelCNN
from zoo_autoregressive.trainer import PixelCNNTrainer

import zoo_core
from zoo_core.errors import CapabilityError, ConfigError, UnknownOptionError
from zoo_core.seeding import Noise
from zoo_core.trainer import NoTrainerOptions

torch.set_num_threads(1)

HEADS = ["softmax", "logistic_mixture"]


def tiny(head: str = "logistic_mixture", **config) -> PixelCNN:
    torch.manual_seed(0)
    base = {"image_size": 6, "width": 8, "layers": 4, "kernel_size": 3, "first_kernel_size": 7,
            "head": head, "head_width": 16, "mixtures": 3}  # fmt: skip
    return PixelCNN.from_config({**base, **config}).eval()


def images(n: int, shape=(1, 6, 6), seed: int = 0) -> torch.Tensor:
    """8-bit images in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, LEVELS, (n, *shape), generator=g).float() / (LEVELS - 1)


def all_images(shape) -> torch.Tensor:
    """Every 8-bit image of a shape with two values in all, ``(65536, *shape)``."""
    levels = torch.cartesian_prod(torch.arange(LEVELS), torch.arange(LEVELS))
    return levels.reshape(-1, *shape).float() / (LEVELS - 1)


# --------------------------------------------------------------------- the causal mask
def _jacobian_rows(model, x, labels, outputs):
    """For each b, the gradient of ``outputs(model(values), b)`` (a scalar of image b) with
    respect to image b's values: ``(B, C, H, W)``. Images are independent, so one backward
    pass gives every row."""
    values = to_values(model.levels(x)).requires_grad_(True)
    out = model(values, labels)
    total = sum(outputs(out, b) for b in range(x.shape[0]))
    (grad,) = torch.autograd.grad(total, values)
    return grad


@pytest.mark.parametrize("head", HEADS)
def test_each_pixel_sees_every_earlier_pixel_and_no_later_one(head):
    model = tiny(head, num_classes=3)
    assert all(bool((p != 0).all()) for p in model.parameters())  # the test could fail
    _, height, width = model.image_shape
    pixels = height * width
    x = images(1).expand(pixels, -1, -1, -1)  # one copy per pixel p = b
    labels = torch.full((pixels,), 2)
    g = torch.Generator().manual_seed(1)
    size = model(to_values(model.levels(x[:1])), labels[:1]).shape[1:-2]
    projection = torch.randn(size, generator=g)

    def at_pixel(out, b):
        i, j = divmod(b, width)
        return (out[b, ..., i, j] * projection).sum()

    grad = _jacobian_rows(model, x, labels, at_pixel).abs().sum(1).flatten(1)  # (p, pixels)
    for p in range(pixels):
        assert bool((grad[p, p:] == 0).all()), f"pixel {p} sees a pixel at or after it"
        assert bool((grad[p, :p] > 0).all()), f"pixel {p} is blind to {grad[p, :p].eq(0)}"
    # And by changing values: every pixel at or after p redrawn leaves p's output unchanged.
    changed = x.clone()
    noise = images(pixels, seed=7)
    order = torch.arange(pixels).reshape(1, 1, height, width)
    later = order >= torch.arange(pixels)[:, None, None, None]  # (p, 1, H, W)
    changed[later] = noise[later]
    before = model(to_values(model.levels(x)), labels)
    after = model(to_values(model.levels(changed)), labels)
    for p in range(pixels):
        i, j = divmod(p, width)
        torch.testing.assert_close(after[p, ..., i, j], before[p, ..., i, j], rtol=0, atol=1e-5)
    assert not torch.allclose(after[:-1, ..., -1, -1], before[:-1, ..., -1, -1])


def test_colour_channels_see_the_channels_before_them_in_the_softmax_head():
    model = tiny("softmax", channels=3)
    _, height, width = model.image_shape
    rows = [(p, c) for p in range(height * width) for c in range(3)]
    x = images(1, (3, 6, 6)).expand(len(rows), -1, -1, -1)
    g = torch.Generator().manual_seed(2)
    projection = torch.randn(LEVELS, generator=g)

    def at_element(out, b):
        p, c = rows[b]
        i, j = divmod(p, width)
        return (out[b, c, :, i, j] * projection).sum()

    grad = _jacobian_rows(model, x, None, at_element)  # (rows, C, H, W)
    order = grad.abs().permute(0, 2, 3, 1).flatten(1)  # element (q, c') at 3 q + c'
    for b, (p, c) in enumerate(rows):
        element = 3 * p + c
        assert bool((order[b, element:] == 0).all()), f"(pixel {p}, channel {c}) sees later"
        assert bool((order[b, :element] > 0).all()), f"(pixel {p}, channel {c}) has a blind spot"


def test_the_mixture_heads_parameters_see_the_earlier_pixels_of_every_channel():
    model = tiny("logistic_mixture", channels=3)
    _, height, width = model.image_shape
    pixels = height * width
    x = images(1, (3, 6, 6)).expand(pixels, -1, -1, -1)
    g = torch.Generator().manual_seed(3)
    projection = torch.randn(param_count(3, 3), generator=g)

    def at_pixel(out, b):
        i, j = divmod(b, width)
        return (out[b, :, i, j] * projection).sum()

    grad = _jacobian_rows(model, x, None, at_pixel).abs().permute(0, 2, 3, 1).flatten(1)
    for p in range(pixels):
        assert bool((grad[p, 3 * p :] == 0).all()) and bool((grad[p, : 3 * p] > 0).all()), p


# --------------------------------------------------------------------- likelihoods
def test_the_discretized_logistic_mixture_sums_to_one_over_the_256_levels():
    levels = torch.arange(LEVELS)
    x = to_values(levels).reshape(LEVELS, 1, 1)  # (256, C=1, 1)
    g = torch.Generator().manual_seed(4)
    for scale in (-7.0, -4.0, -1.0, 1.5):
        params = torch.randn(1, 9, 1, generator=g)  # 3 components: logits, means, log-scales
        params[:, 6:] = scale
        params[:, 3:6] *= 1.5  # means in and beyond [-1, 1]
        logp = mixture_log_prob(params.expand(LEVELS, -1, -1), x, 1, 3)[:, 0]
        assert float(torch.logsumexp(logp.double(), 0).exp()) == pytest.approx(1.0, abs=1e-5)

    # An inner bin: the difference of the logistic's CDF at the bin's edges (eq. 2); the end
    # bins: the tails.
    def sigmoid(t: float) -> float:
        return 1 / (1 + math.exp(-t))

    s = 0.05
    for level, mean, expected in (
        (100, -0.1, lambda c, m: sigmoid((c + 1 / 255 - m) / s) - sigmoid((c - 1 / 255 - m) / s)),
        (0, -0.9, lambda c, m: sigmoid((c + 1 / 255 - m) / s)),
        (255, 0.95, lambda c, m: 1 - sigmoid((c - 1 / 255 - m) / s)),
    ):
        centre = level * 2 / 255 - 1
        got = logistic_log_prob(to_values(torch.tensor(level)), torch.tensor(mean),
                                torch.tensor(math.log(s)))  # fmt: skip
        assert float(got) == pytest.approx(math.log(expected(centre, mean)), rel=1e-5)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize(
    ("shape", "classes"), [((1, 1, 2), None), ((2, 1, 1), None), ((1, 1, 2), 3)]
)
def test_the_joint_sums_to_one_over_every_image(head, shape, classes):
    """65,536 images: two grey pixels (the chain rule across pixels), one pixel of two
    channels (within a pixel), and the class mixture of a conditional model."""
    c, h, w = shape
    model = tiny(head, image_size=(h, w), channels=c, num_classes=classes)
    logp = model.log_prob(all_images(shape)).double()
    assert float(torch.logsumexp(logp, 0).exp()) == pytest.approx(1.0, abs=2e-4)


def test_the_softmax_likelihood_equals_a_hand_computation():
    model = tiny("softmax", num_classes=2)
    g = torch.Generator().manual_seed(5)
    bias = torch.randn(LEVELS, generator=g)
    with torch.no_grad():  # every conditional is now softmax(bias)
        model.head.out.weight.zero_()
        model.head.out.bias.copy_(bias)
    x = images(3)
    log_z = math.log(sum(math.exp(b) for b in bias.tolist()))
    hand = [sum(bias[round(v * 255)].item() - log_z for v in img.flatten().tolist()) for img in x]
    for labels in ([0, 1, 0], torch.tensor([1, 0, 1]), None):
        torch.testing.assert_close(model.log_prob(x, labels), torch.tensor(hand), rtol=1e-5, atol=0)
    bits = model.bits_per_dim(x, 1)
    torch.testing.assert_close(bits, -torch.tensor(hand) / (36 * math.log(2)), rtol=1e-5, atol=0)


def test_the_mixture_likelihood_equals_a_hand_computation():
    model = tiny("logistic_mixture")
    params = torch.tensor([0.3, -0.2, 0.0, -0.5, 0.1, 0.6, -2.0, -1.5, -3.0])  # K = 3
    with torch.no_grad():  # every pixel's mixture is now this one
        model.head.out.weight.zero_()
        model.head.out.bias.copy_(params)
    x = images(2)
    logits, means, scales = params[:3], params[3:6], params[6:].exp()
    pis = torch.softmax(logits, 0).tolist()

    def prob(level: int) -> float:
        lo, hi = (level - 0.5) * 2 / 255 - 1, (level + 0.5) * 2 / 255 - 1
        total = 0.0
        for pi, m, s in zip(pis, means.tolist(), scales.tolist(), strict=True):
            cdf_hi = 1.0 if level == 255 else 1 / (1 + math.exp(-(hi - m) / s))
            cdf_lo = 0.0 if level == 0 else 1 / (1 + math.exp(-(lo - m) / s))
            total += pi * (cdf_hi - cdf_lo)
        return total

    hand = [sum(math.log(prob(round(v * 255))) for v in img.flatten().tolist()) for img in x]
    torch.testing.assert_close(model.log_prob(x), torch.tensor(hand), rtol=1e-5, atol=0)


def test_images_are_read_as_their_nearest_level():
    model = tiny()
    x = images(2)
    torch.testing.assert_close(model.log_prob(x + 0.4 / 255), model.log_prob(x))


# --------------------------------------------------------------------- sampling
@pytest.mark.numerics
@pytest.mark.parametrize("head", HEADS)
def test_samples_follow_the_seeding_rule(head):
    model = tiny(head, num_classes=3)
    a = model.sample(6, seed=3, batch_size=4)
    assert a.shape == (6, 1, 6, 6) and a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a * 255, torch.round(a * 255))  # 8-bit levels
    assert torch.equal(model.sample(3, seed=3), a[:3])
    assert torch.equal(model.sample(2, seed=3, start=4), a[4:])
    # Another batch size: the same draws, up to the float rounding of batched kernels.
    torch.testing.assert_close(model.sample(6, seed=3, batch_size=1), a)
    assert not torch.equal(model.sample(6, seed=4), a)
    # Without labels each sample's class comes from the noise (another stream).
    drawn = Noise.for_range(3, 0, 6).randint(3, stream=LABEL_STREAM).tolist()
    assert torch.equal(model.sample(6, seed=3, labels=drawn), a)
    one = model.sample(4, seed=3, labels=[1, 1, 1, 1])
    assert torch.equal(model.sample(4, seed=3, labels=1), one)


@pytest.mark.numerics
@pytest.mark.parametrize("head", HEADS)
def test_the_cached_sampler_equals_the_whole_network_per_pixel(head):
    """Reference: recompute every pixel's conditional from the whole network (H x W passes);
    a receptive field smaller than the image, so that the cached rows and columns are cut."""
    model = tiny(head, image_size=(7, 9), channels=2, layers=2, first_kernel_size=3)
    assert model.reach < 7
    n, seed, labels = 3, 11, None
    noise = Noise.for_range(seed, 0, n)
    levels = torch.zeros(n, 2, 7, 9, dtype=torch.int64)
    with torch.no_grad():
        for p in range(63):
            i, j = divmod(p, 9)
            h = model.features(to_values(levels), labels)[..., i : i + 1, j : j + 1]
            levels[:, :, i, j] = model.head.draw(h, noise.rand(3, step=p, dtype=torch.float64), 1.0)
    assert torch.equal(model.sample(n, seed=seed), levels.float() / 255)
    # The cached features of every pixel equal the whole network's (a draw may not show a
    # small difference).
    values = to_values(levels)
    whole, cached = model.features(values), torch.zeros(n, 8, 7, 9)
    for i in range(7):
        above = model._above(values, i, [None] * 2)
        for j in range(9):
            cached[..., i, j] = model._pixel_features(values, i, j, above, [None] * 2)[..., 0, 0]
    torch.testing.assert_close(cached, whole, rtol=0, atol=1e-5)
    assert model.nfe(model.parse_sample_options({})) == 63


@pytest.mark.parametrize("head", HEADS)
def test_draws_follow_the_models_distribution(head):
    """One pixel of two channels: 20,000 draws against the exact joint of its 65,536 values,
    on a 4 x 4 grid of level ranges (so that the channels' dependence is checked too)."""
    model = tiny(head, image_size=1, channels=2)
    exact = model.log_prob(all_images((2, 1, 1))).double().exp().reshape(LEVELS, LEVELS)
    exact = exact.reshape(4, 64, 4, 64).sum((1, 3))  # (channel 0 range, channel 1 range)
    draws = (model.sample(20_000, seed=0, batch_size=20_000) * 255).round().long()[:, :, 0, 0]
    counts = torch.zeros(4, 4, dtype=torch.float64)
    counts.index_put_((draws[:, 0] // 64, draws[:, 1] // 64), torch.ones(20_000).double(), True)
    assert 0.5 * float((counts / 20_000 - exact).abs().sum()) < 0.03
    assert float(exact.max()) < 0.5  # a spread distribution: the test could fail


@pytest.mark.numerics
@pytest.mark.parametrize("head", HEADS)
def test_greedy_decoding_takes_each_conditionals_most_likely_value(head):
    model = tiny(head, num_classes=2)
    greedy = model.sample(2, seed=0, labels=1, temperature=0)
    assert torch.equal(model.sample(2, seed=9, labels=1, temperature=0), greedy)
    # A vanishing temperature gives the greedy image.
    assert torch.equal(model.sample(2, seed=5, labels=1, temperature=1e-6), greedy)
    # By hand, from the whole network: argmax of the softmax, or the mean of the mixture's
    # most probable component.
    levels = torch.zeros(2, 1, 6, 6, dtype=torch.int64)
    labels = torch.ones(2, dtype=torch.int64)
    with torch.no_grad():
        for p in range(36):
            i, j = divmod(p, 6)
            out = model(to_values(levels), labels)[..., i, j]
            if head == "softmax":
                levels[:, 0, i, j] = out[:, 0].argmax(-1)
            else:
                k = out[:, :3].argmax(-1)
                mean = out[:, 3:6].gather(1, k[:, None])[:, 0]
                levels[:, 0, i, j] = torch.round((mean.clamp(-1, 1) + 1) * 127.5).long()
    assert torch.equal(greedy, levels.float() / 255)


# --------------------------------------------------------------------- inpainting
@pytest.mark.parametrize("head", HEADS)
def test_inpainting_the_bottom_half_of_a_sample_with_its_seed_gives_the_sample(head):
    model = tiny(head, num_classes=3)
    x = model.sample(3, seed=5, labels=[0, 2, 1])
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[:3] = True
    mask[3, :2] = True  # a prefix in raster order: three rows and two pixels
    # The same seed draws the same pixels from the same conditionals: the sample itself.
    assert torch.equal(model.inpaint(x, mask, seed=5, labels=[0, 2, 1]), x)
    other = model.inpaint(x, mask, seed=6, labels=[0, 2, 1])
    assert torch.equal(other[..., :3, :], x[..., :3, :])
    assert torch.equal(other[..., 3, :2], x[..., 3, :2])
    assert not torch.equal(other, x)
    # Without labels each image's class is drawn from p(y | observed) by inverse CDF of the
    # noise's label stream, p(observed | y) the product of the observed pixels' conditionals.
    with torch.no_grad():
        log_like = torch.stack([(model.log_prob_pixels(x, y) * mask).sum((1, 2)) for y in range(3)])
    posterior = torch.softmax(log_like.double(), 0).T  # (N, classes)
    u = Noise.for_range(6, 0, 3).rand(stream=LABEL_STREAM, dtype=torch.float64)
    drawn = [int((torch.cumsum(row, 0) <= v).sum()) for row, v in zip(posterior, u, strict=True)]
    assert torch.equal(model.inpaint(x, mask, seed=6), model.inpaint(x, mask, seed=6, labels=drawn))


def test_inpainting_checks_its_mask():
    model = tiny()
    x = images(2)
    top = torch.zeros(6, 6, dtype=torch.bool)
    top[:3] = True
    with pytest.raises(ConfigError, match="does not match the images"):
        model.inpaint(x, torch.ones(5, 5, dtype=torch.bool))
    with pytest.raises(ConfigError, match="every pixel observed"):
        model.inpaint(x, torch.ones(6, 6, dtype=torch.bool))
    with pytest.raises(ConfigError, match="image 1 has no observed pixel"):
        model.inpaint(x, torch.stack([top, torch.zeros(6, 6, dtype=torch.bool)])[:, None])
    with pytest.raises(ConfigError, match="raster order"):
        model.inpaint(x, ~top)  # the bottom half observed: not a prefix
    with pytest.raises(CapabilityError, match="labels do not apply"):
        model.inpaint(x, top, labels=1)


# --------------------------------------------------------------------- save and load
@pytest.mark.parametrize(
    "config", [{"head": "softmax", "channels": 3}, {"head": "logistic_mixture", "num_classes": 3}]
)
def test_save_and_load_round_trip_exactly(config, tmp_path):
    model = tiny(**config)
    model.save_pretrained(tmp_path / "m")
    again = zoo_core.from_pretrained(tmp_path / "m")
    assert type(again) is PixelCNN and again.config == model.config
    assert again.capabilities == model.capabilities
    for name, tensor in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name
    assert torch.equal(again.sample(2, seed=1), model.sample(2, seed=1))
    x = images(2, model.image_shape)
    assert torch.equal(again.log_prob(x), model.log_prob(x))


def test_conditional_is_a_capability_of_models_with_classes_only():
    assert tiny(num_classes=3).capabilities == {"sample", "log_prob", "inpaint", "conditional"}
    assert tiny().capabilities == {"sample", "log_prob", "inpaint"}


# --------------------------------------------------------------------- training
def batch(n: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Images with a bright class-dependent block on a dark ground."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    x = torch.randint(0, 40, (n, 1, 8, 8), generator=g).float()
    for b in range(n):
        rows = slice(1, 5) if labels[b] == 0 else slice(4, 8)
        x[b, :, rows, 2:6] = torch.randint(180, 256, (1, 4, 4), generator=g).float()
    return x / 255, labels


@pytest.mark.parametrize("head", HEADS)
def test_the_trainer_lowers_the_exact_nll_and_reaches_every_parameter(head):
    model = tiny(head, image_size=8, num_classes=2, layers=3).train()
    trainer = PixelCNNTrainer(model, NoTrainerOptions())
    x, labels = batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(40):
        out = trainer.training_step((x, labels), step, "model")
        optimizer.zero_grad()
        out["loss"].backward()
        if step == 0:
            idle = [n for n, p in model.named_parameters() if p.grad is None or p.grad.eq(0).all()]
            assert idle == [], idle
            exact = -model.log_prob(x, labels).mean()
            torch.testing.assert_close(out["loss"].detach(), exact, rtol=1e-5, atol=0)
            assert float(out["bits_per_dim"]) == pytest.approx(float(exact) / (64 * math.log(2)))
        optimizer.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < 0.8 * losses[0], losses[::10]


def test_the_trainer_needs_labels_for_a_conditional_model_only():
    x, labels = batch(4)
    conditional = PixelCNNTrainer(tiny(image_size=8, num_classes=2), NoTrainerOptions())
    with pytest.raises(ConfigError, match="class-conditional: train it on a labelled dataset"):
        conditional.training_step((x, None), 0, "model")
    plain = PixelCNNTrainer(tiny(image_size=8), NoTrainerOptions())
    out = plain.training_step((x, labels), 0, "model")  # the labels are not used
    torch.testing.assert_close(out["loss"].detach(), -plain.model.log_prob(x).mean())


# --------------------------------------------------------------------- errors
def test_bad_inputs_are_typed_one_line_errors():
    plain, conditional = tiny(), tiny(num_classes=3)
    x = images(2)
    cases = [
        (lambda: plain.sample(2, labels=1), CapabilityError, "conditional.: labels do not apply"),
        (lambda: plain.log_prob(x, [0, 1]), CapabilityError, "conditional.: labels do not"),
        (lambda: conditional.sample(2, labels=[0]), ConfigError, "labels has 1 entries for 2"),
        (lambda: conditional.sample(2, labels=3), ConfigError, r"out of range: classes are 0..2"),
        (lambda: conditional.log_prob(x, [0, 5]), ConfigError, "out of range"),
        (lambda: conditional.log_prob_pixels(x), ConfigError, "needs labels"),
        (lambda: plain.log_prob(images(2, (1, 5, 6))), ConfigError, r"takes images \(N, 1, 6, 6\)"),
        (lambda: plain.log_prob(x[0]), ConfigError, r"takes images \(N, 1, 6, 6\)"),
        (lambda: plain.log_prob(x * 2), ConfigError, r"in \[0, 1\]"),
        (lambda: plain.log_prob(x - 0.5), ConfigError, r"in \[0, 1\]"),
        (lambda: plain.log_prob(x * float("nan")), ConfigError, r"in \[0, 1\]"),
        (lambda: plain.log_prob(x.numpy()), ConfigError, "must be a tensor"),
        (lambda: plain.sample(2, temperature=-1), ConfigError, "temperature"),
        (lambda: plain.sample(2, top_k=3), UnknownOptionError, "unknown option"),
        (lambda: PixelCNN.from_config({"kernel_size": 4}), ConfigError, "must be odd"),
        (lambda: PixelCNN.from_config({"image_size": (0, 4)}), ConfigError, "1..256"),
        (lambda: PixelCNN.from_config({"head": "mdn"}), ConfigError, "head"),
        (lambda: PixelCNN.from_config({"depth": 3}), ConfigError, "unknown key"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message) as info:
            call()
        assert "\n" not in str(info.value), str(info.value)

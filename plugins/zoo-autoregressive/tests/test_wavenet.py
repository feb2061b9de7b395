"""WaveNet: causality, fast generation equal to the naive one, the likelihoods against their
closed forms, forecasting, the seeding rule, the trainer and the errors."""

from __future__ import annotations

import math

import pytest
import torch
from zoo_autoregressive.trainer import WaveNetTrainer, WaveNetTrainerConfig
from zoo_autoregressive.wavenet import (
    FastState,
    WaveNet,
    WaveNetSeries,
    mu_law_decode,
    mu_law_encode,
)

import zoo_core
from zoo_core.errors import CapabilityError, ConfigError

torch.set_num_threads(1)
SMALL = {"layers": 4, "stacks": 2, "residual_channels": 8, "gate_channels": 8,
         "skip_channels": 16, "length": 40}  # fmt: skip


def audio(**config) -> WaveNet:
    torch.manual_seed(0)
    model = WaveNet.from_config({**SMALL, **config}).eval()
    _scramble(model)
    return model


def series(**config) -> WaveNetSeries:
    torch.manual_seed(0)
    model = WaveNetSeries.from_config({**SMALL, "channels": 2, **config}).eval()
    _scramble(model)
    with torch.no_grad():
        model.shift.copy_(torch.tensor([3.0, -1.0]))
        model.scale.copy_(torch.tensor([2.0, 0.5]))
    return model


def _scramble(model):
    """Weights large enough that every tap matters (a default init could hide a leak)."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)


def test_the_receptive_field_is_what_the_network_sees():
    model = audio(kernel_size=3)
    rf = model.receptive_field
    assert rf == 2 + 2 * 2 * (1 + 2 + 4 + 8)
    x = torch.randint(0, 256, (1, rf + 10))
    out = model(x)[:, :, -1]
    # Changing the sample just out of reach changes nothing; just within reach does.
    far, near = x.clone(), x.clone()
    far[0, -1 - rf - 1] = (far[0, -1 - rf - 1] + 7) % 256
    near[0, -1 - rf] = (near[0, -1 - rf] + 7) % 256
    assert torch.equal(model(far)[:, :, -1], out)
    assert not torch.allclose(model(near)[:, :, -1], out)


@pytest.mark.parametrize("make", [audio, series])
def test_step_t_depends_on_the_steps_before_it_only(make):
    model = make()
    x = model.to_values(model.sample(1, seed=0, length=24))
    out = model(x)
    for t in range(0, 24, 5):
        changed = x.clone()
        changed[:, t:] = (changed[:, t:] + 3) % 256 if changed.dtype == torch.int64 else 5.0
        torch.testing.assert_close(model(changed)[:, :, : t + 1], out[:, :, : t + 1])
        assert not torch.allclose(model(changed)[:, :, t + 1], out[:, :, t + 1])


@pytest.mark.numerics
@pytest.mark.parametrize("make", [audio, series])
def test_fast_generation_draws_the_naive_samples(make):
    model = make()
    fast = model.sample(4, seed=3, length=40)
    naive = model.sample(4, seed=3, length=40, fast=False)
    if model.modality == "audio":
        assert torch.equal(fast, naive)
    else:
        torch.testing.assert_close(fast, naive, rtol=0, atol=1e-5)


@pytest.mark.numerics
@pytest.mark.parametrize("make", [audio, series])
def test_the_queues_reproduce_the_full_forward_on_any_input(make):
    model = make()
    x = model.to_values(model.sample(2, seed=1, length=30))
    full = model(x)
    state = FastState(model, 2, None)
    previous = None
    for t in range(30):
        torch.testing.assert_close(state.step(previous), full[:, :, t], rtol=1e-5, atol=1e-5)
        previous = x[:, t]


def test_mu_law_matches_its_closed_form():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.01, 0.5, 1.0])
    expected = torch.sign(x) * torch.log1p(255 * x.abs()) / math.log(256)
    levels = mu_law_encode(x)
    assert levels.tolist()[0] == 0 and levels.tolist()[-1] == 255 and levels[2] == 128
    torch.testing.assert_close(levels, ((expected + 1) / 2 * 255 + 0.5).floor().long())
    # Decoding a level and encoding it again is the identity.
    every = torch.arange(256)
    assert torch.equal(mu_law_encode(mu_law_decode(every)), every)


def test_audio_log_prob_is_the_sum_of_the_softmax_terms():
    model = audio()
    x = model.sample(2, seed=0, length=16)
    levels = mu_law_encode(x)
    logits = model(levels)
    expected = torch.log_softmax(logits, 1).gather(1, levels[:, None]).squeeze(1).sum(1)
    torch.testing.assert_close(model.log_prob(x), expected)
    # Every level's probability at a step sums to one.
    torch.testing.assert_close(torch.softmax(logits, 1).sum(1), torch.ones(2, 16))


def test_series_log_prob_is_a_gaussian_density_in_data_units():
    model = series()
    x = model.sample(2, seed=0, length=12)  # data units
    params = model(model.to_values(x))
    mean, log_scale = params.chunk(2, 1)  # standardized units, (N, D, T)
    shift, scale = model.shift[:, None], model.scale[:, None]
    normal = torch.distributions.Normal(mean * scale + shift, torch.exp(log_scale) * scale)
    expected = normal.log_prob(x.transpose(1, 2)).sum((1, 2))
    torch.testing.assert_close(model.log_prob(x), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.numerics
@pytest.mark.parametrize("make", [audio, series])
def test_samples_follow_the_seeding_rule(make):
    model = make()
    a = model.sample(5, seed=2, length=20, batch_size=2)
    torch.testing.assert_close(model.sample(3, seed=2, length=20), a[:3])
    assert not torch.equal(model.sample(5, seed=3, length=20), a)
    greedy = model.sample(2, seed=0, length=20, temperature=0)
    torch.testing.assert_close(model.sample(2, seed=9, length=20, temperature=0), greedy)


@pytest.mark.numerics
def test_forecast_continues_the_context_and_checks_its_length():
    model = series()
    rf = model.receptive_field
    context = model.sample(1, seed=0, length=rf + 5)[0]  # (T0, 2)
    paths = model.forecast(context, 6, n_paths=3, seed=4)
    assert paths.shape == (3, 6, 2)
    # Path i is the continuation that generation after the same context draws.
    from zoo_core.seeding import Noise

    values = model.to_values(context)[None].expand(3, -1, -1)
    drawn = model.generate(Noise.for_range(4, 0, 3), 6, None, 1.0, False, values)
    torch.testing.assert_close(paths, model.from_values(drawn), rtol=0, atol=1e-4)
    mean_path = model.forecast(context, 6, n_paths=2, temperature=0)
    torch.testing.assert_close(mean_path[0], mean_path[1])
    with pytest.raises(ConfigError, match=f"needs at least its receptive field, {rf} steps"):
        model.forecast(context[: rf - 1], 6)
    with pytest.raises(ConfigError, match="horizon must be a positive integer"):
        model.forecast(context, 0)
    with pytest.raises(ConfigError, match=r"takes series \(N, T, 2\)"):
        model.forecast(torch.zeros(rf, 3), 2)


@pytest.mark.numerics
def test_global_conditioning_on_a_class():
    model = audio(num_classes=3)
    assert "conditional" in model.capabilities and "conditional" not in audio().capabilities
    a = model.sample(4, seed=0, length=12, labels=[0, 1, 2, 0])
    b = model.sample(4, seed=0, length=12, labels=[1, 1, 2, 0])
    assert torch.equal(a[1:], b[1:]) and not torch.equal(a[0], b[0])
    naive = model.sample(4, seed=0, length=12, labels=[0, 1, 2, 0], fast=False)
    assert torch.equal(naive, a)
    drawn = model.sample(6, seed=0, length=12)  # classes drawn from the seeded noise
    torch.testing.assert_close(model.sample(3, seed=0, length=12), drawn[:3])
    with pytest.raises(ConfigError, match="labels must lie in 0..2"):
        model.sample(2, seed=0, labels=3)
    with pytest.raises(CapabilityError, match="conditional.: labels do not apply"):
        audio().log_prob(torch.zeros(1, 4), labels=1)


def test_bad_audio_is_refused():
    model = audio()
    with pytest.raises(ConfigError, match=r"in \[-1, 1\]"):
        model.log_prob(torch.full((1, 5), 1.5))
    with pytest.raises(ConfigError, match=r"takes audio \(N, T\)"):
        model.log_prob(torch.zeros(5))


@pytest.mark.parametrize("make", [audio, series])
def test_save_and_load_round_trip_exactly(make, tmp_path):
    model = make()
    model.save_pretrained(tmp_path / "m")
    again = zoo_core.from_pretrained(tmp_path / "m")
    assert type(again) is type(model)
    for name, tensor in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name
    assert torch.equal(again.sample(2, seed=1, length=10), model.sample(2, seed=1, length=10))


def test_the_trainer_windows_standardizes_and_lowers_the_loss():
    from types import SimpleNamespace

    torch.manual_seed(0)
    model = WaveNetSeries.from_config({**SMALL, "channels": 1})
    t = torch.arange(300, dtype=torch.float32)
    data = SimpleNamespace(x=(50 + 40 * torch.sin(2 * math.pi * t / 11)).reshape(1, -1, 1))
    trainer = WaveNetTrainer(model, WaveNetTrainerConfig(window=32, stride=4))
    windows = trainer.dataset(data)
    assert len(windows) == (300 - 32) // 4 + 1
    assert torch.equal(windows[2], data.x[0, 8:40])
    torch.testing.assert_close(model.shift, data.x.mean((0, 1)))
    batch = torch.stack([windows[i] for i in range(16)])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        out = trainer.training_step(batch, step, "model")
        optimizer.zero_grad()
        out["loss"].backward()
        if step == 0:
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
        optimizer.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < losses[0] - 0.5, losses[::10]
    with pytest.raises(ConfigError, match="longer than the data"):
        WaveNetTrainer(model, WaveNetTrainerConfig(window=400)).dataset(data)

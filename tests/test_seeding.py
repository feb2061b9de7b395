"""The counter-based noise of the seeding rule."""

from __future__ import annotations

import math

import pytest
import torch

from zoo_core.seeding import Noise, splitmix64, splitmix64_int


def _as_unsigned(t: torch.Tensor) -> list[int]:
    return [int(v) & ((1 << 64) - 1) for v in t.tolist()]


def test_splitmix64_matches_the_pure_python_reference():
    # Known answer: SplitMix64 seeded with 0 yields 0xE220A8397B1DCDAF first (the reference
    # generator of Steele et al. as used by xoshiro's seeding code).
    assert splitmix64_int(0) == 0xE220A8397B1DCDAF
    values = [0, 1, 2, 12345, 2**31, 2**40 + 7, 2**62, 2**63 - 1]
    signed = [v - (1 << 64) if v >> 63 else v for v in values]
    signed += [-1, -(2**63)]
    values += [(1 << 64) - 1, 1 << 63]
    got = _as_unsigned(splitmix64(torch.tensor(signed, dtype=torch.int64)))
    assert got == [splitmix64_int(v) for v in values]


def test_rows_depend_only_on_seed_and_index():
    full = Noise.for_range(7, 0, 10).randn(3, 4, step=5)
    part = Noise.for_range(7, 4, 7).randn(3, 4, step=5)
    scattered = Noise(7, torch.tensor([9, 0, 4])).randn(3, 4, step=5)
    assert torch.equal(full[4:7], part)
    assert torch.equal(scattered[0], full[9]) and torch.equal(scattered[1], full[0])


def test_element_prefix_is_stable_across_shapes():
    # Element j of a row does not depend on how many elements the row has.
    short = Noise.for_range(3, 0, 2).rand(5)
    long = Noise.for_range(3, 0, 2).rand(50)
    assert torch.equal(short, long[:, :5])


def test_seeds_steps_and_streams_are_independent_draws():
    base = Noise.for_range(0, 0, 4)
    a = base.randn(256)
    assert not torch.equal(a, Noise.for_range(1, 0, 4).randn(256))
    assert not torch.equal(a, base.randn(256, step=1))
    assert not torch.equal(a, base.randn(256, stream=1))
    assert not torch.equal(a[0], a[1])


def test_gaussian_moments():
    z = Noise.for_range(123, 0, 1000).randn(200).double()  # 200k draws
    assert abs(z.mean().item()) < 0.01
    assert abs(z.var().item() - 1.0) < 0.015
    assert abs((z**4).mean().item() - 3.0) < 0.06  # kurtosis of a normal
    # Adjacent elements are uncorrelated.
    corr = torch.corrcoef(torch.stack([z[:, :-1].reshape(-1), z[:, 1:].reshape(-1)]))[0, 1]
    assert abs(corr.item()) < 0.01


def test_uniform_is_open_interval_and_flat():
    u = Noise.for_range(5, 0, 500).rand(200, dtype=torch.float64)
    assert u.min().item() > 0.0 and u.max().item() < 1.0
    counts = torch.histc(u, bins=10, min=0.0, max=1.0)
    expected = u.numel() / 10
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 30.0  # 9 degrees of freedom; p < 1e-3 beyond ~27.9


def test_categorical_follows_probabilities():
    probs = torch.tensor([0.1, 0.2, 0.7]).expand(30000, -1)
    draws = Noise.for_range(9, 0, 30000).categorical(probs)
    freq = torch.bincount(draws, minlength=3).double() / 30000
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.7], dtype=torch.float64), atol=0.01)


def test_randint_range():
    r = Noise.for_range(2, 0, 100).randint(7, 100)
    assert r.dtype == torch.int64 and r.min().item() == 0 and r.max().item() == 6


@pytest.mark.parametrize("seed", [0, -5, 2**70, True, 1.5, "1"])
def test_seed_types(seed):
    if isinstance(seed, bool) or not isinstance(seed, int):
        with pytest.raises(TypeError):
            Noise.for_range(seed, 0, 1)
    else:
        assert Noise.for_range(seed, 0, 2).randn(3).shape == (2, 3)


def test_box_muller_tail_is_bounded_by_32_bit_uniforms():
    z = Noise.for_range(11, 0, 100).randn(1000, dtype=torch.float64)
    assert z.abs().max().item() < math.sqrt(-2 * math.log(2.0**-33))


def test_float32_and_float64_draws_agree():
    noise = Noise.for_range(4, 0, 8)
    z32, z64 = noise.randn(5, 7), noise.randn(5, 7, dtype=torch.float64)
    assert torch.allclose(z32.double(), z64, atol=1e-5)
    u32, u64 = noise.rand(9), noise.rand(9, dtype=torch.float64)
    assert torch.allclose(u32.double(), u64, atol=2**-23)


def test_odd_sizes_use_pairs_consistently():
    noise = Noise.for_range(6, 0, 3)
    assert torch.equal(noise.randn(7), noise.randn(8)[:, :7])
    assert torch.equal(noise.randn(2, 3).reshape(3, 6), noise.randn(6))

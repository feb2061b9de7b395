"""Noise under the seeding rule: sample ``i`` of a call with ``seed=s`` depends only on
``(s, i)`` and the model.

Every random number a sampler draws comes from a counter-based generator: the SplitMix64
finalizer (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number generators")
applied to a key made of the seed, the sample index, the step, the stream and the element
index. There is no state to advance, so a sample's numbers do not depend on which batch or
process draws it, on the batch size, or on how many samples the call asks for, and a whole
batch is drawn in a few tensor operations, identically on CPU and GPU (the integer part is
bit-exact everywhere; the float transform is exact up to the device's ``log``/``cos``).

Integer arithmetic is done on int64 tensors, relying on two's-complement wrap-around of
multiplication and addition, which PyTorch has on every backend; :func:`splitmix64_int` is
the pure-Python reference that the tests hold the tensor version to.
"""

from __future__ import annotations

import math
import secrets

import torch

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MUL1 = 0xBF58476D1CE4E5B9
_MUL2 = 0x94D049BB133111EB


def _signed(x: int) -> int:
    x &= _MASK
    return x - (1 << 64) if x >> 63 else x


def splitmix64_int(x: int) -> int:
    """SplitMix64 finalizer on a Python int (the reference; returns an unsigned 64-bit int)."""
    z = (x + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * _MUL1) & _MASK
    z = ((z ^ (z >> 27)) * _MUL2) & _MASK
    return z ^ (z >> 31)


def _shr(x: torch.Tensor, k: int) -> torch.Tensor:
    # Logical right shift of int64 (``>>`` is arithmetic on signed tensors).
    shifted = x >> k
    return shifted.bitwise_and_((1 << (64 - k)) - 1)


def splitmix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finalizer, elementwise on an int64 tensor (bits as in the reference)."""
    z = x + _signed(_GOLDEN)  # in place from here on: one new tensor, not eight
    z.bitwise_xor_(_shr(z, 30)).mul_(_signed(_MUL1))
    z.bitwise_xor_(_shr(z, 27)).mul_(_signed(_MUL2))
    return z.bitwise_xor_(_shr(z, 31))


def resolve_seed(seed: int | None) -> int:
    """``seed`` as a Python int; a fresh random seed when ``None``.

    Raises:
        TypeError: ``seed`` is not an integer (bools are refused).
    """
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, bool) or not hasattr(seed, "__index__"):
        raise TypeError(f"seed must be an integer or None, got {seed!r}")
    return int(seed)


class Noise:
    """The random draws of one batch of samples under the seeding rule.

    Args:
        seed: the call's seed.
        indices: ``(B,)`` int64, the global indices of this batch's samples (those the
            seeding rule keys on).
        origin: the global index of the call's first sample (``sample(start=...)``), so
            that ``positions`` index per-sample options such as labels.

    Each method draws ``(B, *shape)`` values; row ``b`` depends only on ``(seed,
    indices[b], step, stream)`` and on the element position. Use a distinct ``step`` for each
    step of an iterative sampler and a distinct ``stream`` for each independent use within
    a step (e.g. class labels vs. noise).
    """

    def __init__(self, seed: int, indices: torch.Tensor, origin: int = 0):
        self.seed = resolve_seed(seed)
        self.indices = indices.to(torch.int64)
        self.origin = int(origin)
        self.device = indices.device
        base = _signed(splitmix64_int(self.seed & _MASK))
        self._keys = splitmix64(self.indices ^ base)  # (B,)

    @classmethod
    def for_range(
        cls,
        seed: int,
        start: int,
        stop: int,
        device: torch.device | str = "cpu",
        *,
        origin: int = 0,
    ):
        """Noise for the samples ``start, ..., stop - 1`` (global indices) of a call whose
        first sample is ``origin``."""
        return cls(seed, torch.arange(start, stop, device=device, dtype=torch.int64), origin)

    @property
    def positions(self) -> torch.Tensor:
        """``(B,)`` int64: each sample's position within the call (``indices - origin``),
        for indexing per-sample options given as one entry per requested sample."""
        return self.indices - self.origin

    def __len__(self) -> int:
        return self.indices.numel()

    def bits(self, *shape: int, step: int = 0, stream: int = 0) -> torch.Tensor:
        """Uniform 64-bit words, ``(B, *shape)`` int64."""
        salt = _signed(splitmix64_int(splitmix64_int(step & _MASK) ^ ((stream + 1) * _GOLDEN)))
        keys = splitmix64(self._keys ^ salt)  # (B,)
        count = math.prod(shape)
        counters = splitmix64(torch.arange(count, device=self.device, dtype=torch.int64))
        words = splitmix64(keys[:, None] ^ counters[None, :])  # (B, count)
        return words.reshape(len(self), *shape)

    def rand(self, *shape: int, step: int = 0, stream: int = 0, dtype=torch.float32):
        """Uniform on the open interval (0, 1), ``(B, *shape)``.

        float64 gets 53 random bits per value, other dtypes 23 (centred in their bin, so
        never exactly 0 or 1 in float32; a cast to a shorter float may round to either end).
        """
        words = self.bits(*shape, step=step, stream=stream)
        if dtype == torch.float64:
            return (_shr(words, 11).to(torch.float64) + 0.5) * 2.0**-53
        return ((_shr(words, 41).to(torch.float32) + 0.5) * 2.0**-23).to(dtype)

    def randn(self, *shape: int, step: int = 0, stream: int = 0, dtype=torch.float32):
        """Standard normal, ``(B, *shape)``.

        Box-Muller on the two 32-bit halves of one hashed word gives a pair of normals, the
        elements ``2k`` and ``2k + 1`` (so element ``j`` depends only on word ``j // 2``).
        Computed in float64 when ``dtype`` is float64, else in float32; the tails reach
        ``sqrt(-2 ln 2^-33)`` = 6.76 standard deviations.
        """
        count = math.prod(shape)
        words = self.bits((count + 1) // 2, step=step, stream=stream)  # (B, ceil(M/2))
        work = torch.float64 if dtype == torch.float64 else torch.float32
        u1 = (_shr(words, 32).to(work) + 0.5) * 2.0**-32  # (0, 1]: float32 may round to 1
        u2 = ((words & 0xFFFFFFFF).to(work) + 0.5) * 2.0**-32
        radius = torch.sqrt(-2.0 * torch.log(u1))
        theta = (2.0 * math.pi) * u2
        pairs = torch.stack([radius * torch.cos(theta), radius * torch.sin(theta)], dim=-1)
        return pairs.reshape(len(self), -1)[:, :count].reshape(len(self), *shape).to(dtype)

    def randint(self, high: int, *shape: int, step: int = 0, stream: int = 0) -> torch.Tensor:
        """Uniform integers in ``[0, high)``, ``(B, *shape)`` int64."""
        u = self.rand(*shape, step=step, stream=stream, dtype=torch.float64)
        return torch.clamp((u * high).to(torch.int64), max=high - 1)

    def categorical(self, probs: torch.Tensor, *, step: int = 0, stream: int = 0) -> torch.Tensor:
        """One draw per row from ``probs`` ``(B, K)`` (rows sum to 1), by inverse CDF.

        Returns:
            ``(B,)`` int64 category indices.
        """
        u = self.rand(1, step=step, stream=stream, dtype=torch.float64)  # (B, 1)
        cdf = torch.cumsum(probs.to(torch.float64), dim=-1)
        cdf = cdf / cdf[:, -1:]
        choice = torch.searchsorted(cdf, u, right=True).squeeze(-1)
        return torch.clamp(choice, max=probs.shape[-1] - 1)

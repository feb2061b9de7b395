"""Paths between two latents, for the ``interpolate`` capability of every family."""

from __future__ import annotations

import math

import torch

from zoo_core.errors import ConfigError

METHODS = ("slerp", "linear")


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between vectors ``a`` and ``b`` (``(D,)``) at ``t`` (``(S, 1)``),
    with the norm interpolated linearly; falls back to linear for (anti)parallel ends.

    For Gaussian latents the path keeps a typical norm, where a straight line passes through
    the improbable region near the origin (White 2016, arXiv 1609.04468)."""
    na, nb = a.norm(), b.norm()
    cos = torch.dot(a / na, b / nb).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-6 or (math.pi - omega).abs() < 1e-6:
        return a + (b - a) * t
    direction = (torch.sin((1 - t) * omega) * a / na + torch.sin(t * omega) * b / nb) / torch.sin(
        omega
    )  # (S, D), unit norm
    return direction * (na + (nb - na) * t)


def latent_path(a: torch.Tensor, b: torch.Tensor, steps: int, method: str) -> torch.Tensor:
    """``steps`` points from ``a`` to ``b`` (``(D,)`` each), ends included: ``(steps, D)`` in
    float32, computed in float64.

    Raises:
        ConfigError: ``steps`` is not an integer of at least 2, or ``method`` is not one of
            ``"slerp"`` and ``"linear"``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ConfigError(f"steps must be an integer of at least 2, got {steps!r}")
    if method not in METHODS:
        raise ConfigError(f"method must be 'slerp' or 'linear', got {method!r}")
    a, b = a.double(), b.double()
    t = torch.linspace(0, 1, steps, device=a.device, dtype=torch.float64)[:, None]
    return (slerp(a, b, t) if method == "slerp" else a + (b - a) * t).float()

"""Samplers of the reverse process, one algorithm per file behind one small interface."""

from __future__ import annotations

from zoo_core.errors import ConfigError

from .base import Sampler
from .ddim import DDIMSampler
from .ddpm import DDPMSampler
from .dpm_solver import DPMSolverSampler

__all__ = ["SAMPLERS", "DDIMSampler", "DDPMSampler", "DPMSolverSampler", "Sampler", "sampler_class"]

SAMPLERS: dict[str, type[Sampler]] = {
    cls.name: cls for cls in (DDPMSampler, DDIMSampler, DPMSolverSampler)
}


def sampler_class(name: str) -> type[Sampler]:
    """The sampler registered under ``name``.

    Raises:
        ConfigError: an unknown name; the message lists the known ones.
    """
    try:
        return SAMPLERS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(SAMPLERS))
        raise ConfigError(f"unknown sampler {name!r}; the samplers are: {known}") from None

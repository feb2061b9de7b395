"""Devices and dtypes named by users, checked before any work is done."""

from __future__ import annotations

from typing import Any

from zoo_core.errors import ConfigError

FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")


def default_device() -> str:
    """Where evaluation runs unless told otherwise: ``cuda`` when available, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device: Any):
    """``device`` as a ``torch.device`` that exists on this machine.

    Raises:
        ConfigError: a malformed name, or a device this machine does not have.
    """
    import torch

    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"invalid device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {device!r}: CUDA is not available on this machine")
        if resolved.index is not None and resolved.index >= count:
            raise ConfigError(f"device {device!r}: this machine has {count} CUDA device(s)")
    elif resolved.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"device {device!r}: MPS is not available on this machine")
    elif resolved.type != "cpu":
        raise ConfigError(f"device {device!r}: unsupported type; use cpu, cuda, cuda:N or mps")
    return resolved


def resolve_dtype(dtype: Any):
    """``dtype`` (a name or a ``torch.dtype``) as a floating ``torch.dtype``."""
    import torch

    if isinstance(dtype, str):
        if dtype not in FLOAT_DTYPES:
            raise ConfigError(f"invalid dtype {dtype!r}; use one of {', '.join(FLOAT_DTYPES)}")
        return getattr(torch, dtype)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ConfigError(
            f"invalid dtype {dtype!r}; models load as a floating dtype ({', '.join(FLOAT_DTYPES)})"
        )
    return dtype

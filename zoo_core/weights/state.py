"""Putting a state dict into a freshly built model: all checks first, then ``strict=True``."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from zoo_core.errors import NonFiniteWeightsError, StateDictMismatchError


def check_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise unless ``state`` has exactly ``model``'s tensor names and shapes, all finite.

    Raises:
        StateDictMismatchError: listing missing, unexpected and mis-shaped tensors.
        NonFiniteWeightsError: listing the tensors holding NaN or infinity.
    """
    expected = model.state_dict()
    odd = sorted(name for name, value in state.items() if not isinstance(value, torch.Tensor))
    if odd:
        raise StateDictMismatchError(source, unexpected=[f"{n} (not a tensor)" for n in odd])
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        (name, tuple(state[name].shape), tuple(expected[name].shape))
        for name in sorted(set(expected) & set(state))
        if tuple(state[name].shape) != tuple(expected[name].shape)
    ]
    if missing or unexpected or mismatched:
        raise StateDictMismatchError(source, missing, unexpected, mismatched)
    bad = [
        name
        for name, tensor in state.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if bad:
        raise NonFiniteWeightsError(source, sorted(bad))


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Check ``state`` (see :func:`check_state`) and load it with ``strict=True``."""
    check_state(model, state, source)
    model.load_state_dict(state, strict=True)

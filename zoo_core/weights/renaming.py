"""Renaming a published checkpoint's state dict to a native model's names, for the weight
converters of the plugins: every tensor accounted for, by name, or a
``StateDictMismatchError`` that lists the missing, unexpected and mis-shaped ones."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch

from zoo_core.errors import StateDictMismatchError

# The attention names of diffusers before 0.15 (query/key/value/proj_attn), which many
# published diffusers repositories still hold, and the current ones.
_DEPRECATED_ATTENTION = re.compile(r"(\.attentions\.\d+\.)(query|key|value|proj_attn)\.")
_CURRENT_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def current_diffusers_name(name: str) -> str:
    """A diffusers state-dict name with deprecated attention names made current."""
    return _DEPRECATED_ATTENTION.sub(
        lambda m: m.group(1) + _CURRENT_ATTENTION[m.group(2)] + ".", name
    )


def rename_state_dict(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, tuple[int, ...]],
    file_name: Callable[[str], str],
    *,
    source: str,
    alias: Callable[[str], str] = lambda name: name,
    adapt: Callable[[str, torch.Tensor], torch.Tensor] = lambda name, tensor: tensor,
) -> dict[str, torch.Tensor]:
    """``state`` (a checkpoint's tensors by their names in the file) under the native names.

    Args:
        state: the file's tensors.
        expected: native name -> shape, e.g. from a model built on the meta device.
        file_name: native name -> its name in the file (current spelling).
        source: how to name the file in errors.
        alias: a file name -> its current spelling (older releases' names).
        adapt: (current file name, tensor) -> the tensor in the native layout (e.g. a 1x1
            convolution's weight as a linear one); the tensors are otherwise not copied.

    Raises:
        StateDictMismatchError: listing, by their names in ``source``, the tensors that are
            missing, unexpected (or given twice under an old and a new name), or mis-shaped.
    """
    native_of = {file_name(name): name for name in expected}
    converted: dict[str, torch.Tensor] = {}
    unexpected, mismatched = [], []
    for name_in_file, tensor in state.items():
        name = alias(name_in_file)
        native = native_of.get(name)
        if native is None or not isinstance(tensor, torch.Tensor):
            unexpected.append(name_in_file if native is None else f"{name_in_file} (not a tensor)")
            continue
        if native in converted:
            unexpected.append(f"{name_in_file} (a second copy of {name})")
            continue
        tensor = adapt(name, tensor)
        if tuple(tensor.shape) != tuple(expected[native]):
            mismatched.append((name_in_file, tuple(tensor.shape), tuple(expected[native])))
        converted[native] = tensor
    missing = [file_name(n) for n in expected if n not in converted]
    if missing or unexpected or mismatched:
        raise StateDictMismatchError(source, missing, sorted(unexpected), mismatched)
    return converted

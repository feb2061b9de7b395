"""Reading tensor files safely: safetensors by default, pickle only where allowed.

A safetensors file is checked by our own parser before the library touches it: the header
length lies inside the file, the header is a JSON object of well-formed entries, and the
tensors' byte ranges tile the data section exactly (no gap, no overlap, nothing past the
end). Whatever is wrong, the caller gets :class:`CorruptWeightsError` naming the file (and
the tensor), never another exception type.

Pickle checkpoints (``.bin``, ``.pt``, ``.pth``, ``.ckpt``) are read only when the model
card allows it, and then only through ``torch.load(weights_only=True)``; there is no
fallback to the full unpickler.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo_core.errors import CorruptWeightsError, UnsafeFormatError, WeightsNotFoundError

if TYPE_CHECKING:
    import torch

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt"})
SAFETENSORS_SUFFIX = ".safetensors"
MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit

DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4,
    "U64": 8, "I64": 8, "F64": 8,
}  # fmt: skip


def parse_safetensors_header(path: Path) -> dict[str, dict[str, Any]]:
    """Validate the layout of a safetensors file and return its tensor entries.

    Raises:
        CorruptWeightsError: anything malformed: short file, header length past the end,
            invalid JSON, bad dtype/shape/offsets, overlapping or missing byte ranges,
            truncated data or trailing bytes.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise _corrupt(path, "shorter than the 8-byte header length")
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > min(MAX_HEADER_BYTES, size - 8):
                raise _corrupt(path, f"header length {header_len} runs past the end of the file")
            raw = handle.read(header_len)
    except OSError as exc:
        raise CorruptWeightsError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _corrupt(path, "the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "the header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _corrupt(path, "__metadata__ must map strings to strings")
    data_len = size - 8 - header_len
    spans = []
    for name, entry in header.items():
        spans.append((*_check_entry(path, name, entry, data_len), name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            what = "overlaps another tensor" if begin < position else "leaves a gap before it"
            raise _corrupt(path, f"tensor {name!r} {what} (offset {begin}, expected {position})")
        position = end
    if position != data_len:
        raise _corrupt(
            path, f"tensors cover {position} bytes but the data section holds {data_len}"
        )
    return header


def _check_entry(path: Path, name: str, entry: Any, data_len: int) -> tuple[int, int]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise _corrupt(path, f"tensor {name!r} must have exactly dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPE_SIZES:
        raise _corrupt(path, f"tensor {name!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise _corrupt(path, f"tensor {name!r} has a malformed shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise _corrupt(path, f"tensor {name!r} has malformed data_offsets {offsets!r}")
    begin, end = offsets
    if end > data_len:
        raise _corrupt(path, f"tensor {name!r} ends at byte {end}, past the data ({data_len})")
    if end - begin != math.prod(shape) * DTYPE_SIZES[dtype]:
        raise _corrupt(path, f"tensor {name!r}: byte range does not match its dtype and shape")
    return begin, end


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62


def _corrupt(path: Path, why: str) -> CorruptWeightsError:
    return CorruptWeightsError(
        f"{path} is not a valid safetensors file: {why}; it is corrupt or truncated: "
        f"download it again"
    )


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, on the CPU, after :func:`parse_safetensors_header`."""
    from safetensors.torch import load

    parse_safetensors_header(path)
    try:
        return load(path.read_bytes())
    except Exception as exc:  # the layout checked out; anything else is still corruption
        raise _corrupt(path, f"{type(exc).__name__}: {exc}") from exc


def read_pickle(path: Path, *, allow_pickle: bool) -> dict[str, torch.Tensor]:
    """A pickle checkpoint through ``torch.load(weights_only=True)``, where allowed.

    Raises:
        UnsafeFormatError: pickle is not allowed for this source, or the restricted unpickler
            refused the payload.
        CorruptWeightsError: the file is not a readable checkpoint.
    """
    if not allow_pickle:
        raise UnsafeFormatError(
            f"refusing to read the pickle checkpoint {path}: pickle can run code and this "
            f"model's card does not allow it; convert it to safetensors"
        )
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        raise UnsafeFormatError(
            f"{path}: the weights-only unpickler refused this checkpoint ({_refusal(exc)}); "
            f"it holds more than tensors: do not load it"
        ) from None
    except Exception as exc:
        raise CorruptWeightsError(
            f"{path} is not a readable checkpoint ({type(exc).__name__}); download it again"
        ) from None
    import torch

    if isinstance(state, Mapping) and "state_dict" in state and len(state) <= 4:
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CorruptWeightsError(f"{path} does not hold a mapping of tensor names to tensors")
    return dict(state)


def _refusal(exc: Exception) -> str:
    """The reason in torch's refusal, without its advice to retry with weights_only=False."""
    _, marker, detail = str(exc).partition("WeightsUnpickler error:")
    lines = [line.strip() for line in detail.splitlines() if line.strip()] if marker else []
    return lines[0].split(". ")[0].rstrip(".") if lines else "refused"


def read_tensors(path: Path, *, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Tensors of ``path`` by its format (from the suffix), read safely."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file {path} does not exist")
    if path.suffix == SAFETENSORS_SUFFIX:
        return read_safetensors(path)
    if path.suffix in PICKLE_SUFFIXES:
        return read_pickle(path, allow_pickle=allow_pickle)
    raise UnsafeFormatError(
        f"{path}: unknown weights format {path.suffix!r}; use .safetensors "
        f"(or a pickle format where the card allows it)"
    )


def encode_safetensors(
    state: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> bytes:
    """``state`` as safetensors bytes (tensors moved to the CPU; shared storage copied)."""
    from safetensors.torch import save

    tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in state.items()}
    return save(tensors, metadata=dict(metadata or {}))

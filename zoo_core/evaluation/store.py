"""Cache files of the harness (reference statistics, sample shards): safetensors with a
JSON record and a checksum of the tensor bytes in their metadata, written atomically.

A file that is missing, truncated, malformed, or whose checksum or record does not match
what the caller expects reads as ``None`` (with a warning where it existed), so the caller
rebuilds it: a corrupt cache entry costs a recomputation, never a wrong number.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from zoo_core._io import atomic_write_bytes
from zoo_core.weights.formats import encode_safetensors, read_safetensors

log = logging.getLogger(__name__)


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of ``tensors``, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous().reshape(-1)  # 0-d: one element
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensors[name].shape)};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def write_entry(path: Path, tensors: dict[str, torch.Tensor], record: dict[str, Any]) -> Path:
    """Write ``tensors`` with ``record`` (JSON-serializable) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"record": json.dumps(record, sort_keys=True), "checksum": tensor_checksum(tensors)}
    return atomic_write_bytes(path, encode_safetensors(tensors, metadata))


def read_entry(
    path: Path, expect: dict[str, Any] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """``(tensors, record)`` of a cache entry, or ``None`` when it is missing or unusable.

    Args:
        expect: fields the record must hold with these values (e.g. the key it was built
            for); any difference makes the entry unusable.
    """
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        tensors = read_safetensors(path)
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
        record = json.loads(metadata["record"])
        if metadata.get("checksum") != tensor_checksum(tensors):
            raise ValueError("checksum mismatch")
    except Exception as exc:
        log.warning("cache entry %s is corrupt (%s): rebuilding it", path, exc)
        return None
    for key, value in (expect or {}).items():
        if record.get(key) != value:
            log.warning("cache entry %s was built for another %s: rebuilding it", path, key)
            return None
    return tensors, record

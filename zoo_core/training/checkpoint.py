"""Checkpoints that lose nothing.

A checkpoint is one file, ``checkpoints/step-<step>.pt`` (``torch.save`` of tensors,
numbers, strings, lists and dicts only, read back with ``weights_only=True``), written
atomically (temporary file, fsync, ``os.replace``), then committed by a marker
``step-<step>.commit`` holding its sha256. Only committed checkpoints count; older ones are
deleted only after a newer one is committed; resume takes the newest committed checkpoint
whose file matches its marker and says why it skipped any other.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo_core._io import atomic_write_bytes
from zoo_core.errors import CheckpointError

log = logging.getLogger(__name__)

DIRECTORY = "checkpoints"
_NAME = re.compile(r"^step-(\d{9})\.commit$")


@dataclass
class Skipped:
    path: Path
    reason: str


def checkpoint_dir(out: Path) -> Path:
    return Path(out) / DIRECTORY


def _paths(out: Path, step: int) -> tuple[Path, Path]:
    stem = checkpoint_dir(out) / f"step-{step:09d}"
    return stem.with_suffix(".pt"), stem.with_suffix(".commit")


def committed_steps(out: Path) -> list[int]:
    """Steps with a commit marker, newest first."""
    folder = checkpoint_dir(out)
    if not folder.is_dir():
        return []
    steps = [int(m.group(1)) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(steps, reverse=True)


def save_checkpoint(out: Path, step: int, state: dict[str, Any], keep_last: int) -> Path:
    """Write and commit the checkpoint of ``step``; then prune beyond ``keep_last``.

    Raises:
        CheckpointError: the write failed (e.g. disk full); the previous checkpoints are
            untouched and the partial file removed.
    """
    path, marker = _paths(out, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getbuffer()  # no copy of what may be gigabytes
    digest = hashlib.sha256(data).hexdigest()
    try:
        marker.unlink(missing_ok=True)  # re-saving a step: uncommit the old file first
        atomic_write_bytes(path, data)
        record = {"step": step, "file": path.name, "sha256": digest, "bytes": len(data)}
        atomic_write_bytes(marker, (json.dumps(record) + "\n").encode())
    except OSError as exc:
        previous = [s for s in committed_steps(out) if s != step]
        kept = f"checkpoint step {previous[0]} is intact" if previous else "no earlier checkpoint"
        raise CheckpointError(
            f"could not write the checkpoint of step {step} to {path.parent} "
            f"({exc.strerror or exc}); {kept}; free space and resume with --resume"
        ) from None
    _prune(out, keep_last)
    return path


def _prune(out: Path, keep_last: int) -> None:
    steps = committed_steps(out)
    for old in steps[keep_last:]:
        path, marker = _paths(out, old)
        marker.unlink(missing_ok=True)  # uncommit first: a half-deleted one is never used
        path.unlink(missing_ok=True)
    for temporary in checkpoint_dir(out).glob(".step-*.tmp"):
        temporary.unlink(missing_ok=True)  # a write killed before its os.replace (one writer)
    newest = steps[0] if steps else None
    for stray in checkpoint_dir(out).glob("step-*.pt"):
        step = int(stray.stem.split("-")[1])
        if newest is not None and step < newest and step not in steps[:keep_last]:
            stray.unlink(missing_ok=True)  # written but never committed (killed mid-save)


def load_checkpoint(out: Path) -> tuple[dict[str, Any] | None, Path | None, list[Skipped]]:
    """The newest committed, intact checkpoint of run ``out``.

    Returns:
        ``(state, path, skipped)``: ``state`` is None when there is none; ``skipped`` lists
        each newer checkpoint passed over, with the reason (also logged as a warning).
    """
    skipped: list[Skipped] = []
    for step in committed_steps(out):
        path, marker = _paths(out, step)
        data, reason = _read_checked(path, marker)
        if data is not None:
            try:  # from the bytes just hashed: one read of the file, not two
                state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
                return state, path, skipped
            except Exception as exc:
                reason = f"unreadable ({type(exc).__name__})"
        log.info("skipping checkpoint %s: %s", path.name, reason)
        skipped.append(Skipped(path, reason))
    return None, None, skipped


def quarantine(skipped: list[Skipped]) -> None:
    """Rename skipped checkpoints (file and marker) to ``*.bad``: kept for inspection, out of
    the way of pruning, which ranks committed checkpoints by step."""
    for item in skipped:
        for path in (item.path, item.path.with_suffix(".commit")):
            if path.exists():
                path.replace(path.with_name(path.name + ".bad"))


def _read_checked(path: Path, marker: Path) -> tuple[bytes | None, str | None]:
    """The checkpoint's bytes if they match the marker's sha256, else the reason."""
    try:
        record = json.loads(marker.read_text())
        expected = record["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, "its commit marker is unreadable"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, "the file is missing"
    if hashlib.sha256(data).hexdigest() != expected:
        return None, "the file does not match its commit marker (corrupt or truncated)"
    return data, None

"""Result records: one JSON object per (model, protocol) evaluation, one per line of a
``results.jsonl``.

Appending takes an exclusive lock on ``<file>.lock`` and replaces the file atomically with
its old content plus the new line, so a reader never sees half a record and two concurrent
writers lose nothing. A line that is not a JSON object, or a record of a newer format than
this zoo reads, is an error naming the file and the line: nothing is silently skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
from pathlib import Path
from typing import Any

from zoo_core._io import atomic_write_bytes
from zoo_core.errors import ResultsFileError

FORMAT = 1


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _clean(value: Any) -> Any:
    """JSON has no NaN: non-finite floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one line of ``path`` (created if missing), atomically.

    Raises:
        ResultsFileError: the existing file is corrupt or of a newer format (it is left
            untouched).
    """
    path = Path(path)
    line = json.dumps(_clean(record), sort_keys=True, allow_nan=False) + "\n"
    with _locked(path):
        old = path.read_bytes() if path.exists() else b""
        if old:
            _parse(old.decode("utf-8", errors="replace"), path)
            if not old.endswith(b"\n"):
                old += b"\n"
        atomic_write_bytes(path, old + line.encode("utf-8"))


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record of ``path`` (an absent file has none).

    Raises:
        ResultsFileError: a line that is not a JSON object with a ``format``, or a format
            newer than this zoo's.
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ResultsFileError(f"{path} is not UTF-8 text: not a results file") from None
    return _parse(text, path)


def _parse(text: str, path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ResultsFileError(
                f"{path}:{number} is not a JSON record ({exc.msg}); the file is corrupt: "
                "remove or repair that line"
            ) from None
        version = record.get("format") if isinstance(record, dict) else None
        if not isinstance(version, int) or isinstance(version, bool):
            raise ResultsFileError(
                f"{path}:{number} is not a zoo result record (no integer 'format'); "
                "remove or repair that line"
            )
        if version > FORMAT:
            raise ResultsFileError(
                f"{path}:{number} has format {version}, newer than this zoo reads ({FORMAT}); "
                "upgrade zoo-core"
            )
        records.append(record)
    return records

"""Results files: evaluation records (:class:`zoo_core.record.EvaluationRecord`), one JSON
object per line of a ``results.jsonl``.

Appending takes an exclusive lock on ``<file>.lock`` and replaces the file atomically with
its old content plus the new line, so a reader never sees half a record and two concurrent
writers lose nothing. A line that is not a valid record, or a record of a newer format than
this zoo reads, is an error naming the file and the line: nothing is silently skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from pathlib import Path
from typing import Any

from zoo_core._io import atomic_write_bytes
from zoo_core.errors import ResultsFileError
from zoo_core.record import EvaluationRecord


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def append_record(path: str | Path, record: EvaluationRecord | dict[str, Any]) -> None:
    """Append ``record`` (a record, or its JSON to check as one) as one line of ``path``
    (created if missing), atomically.

    Raises:
        ResultsFileError: ``record`` is not a valid record, or the existing file is corrupt
            or of a newer format (it is left untouched).
    """
    path = Path(path)
    line = EvaluationRecord.parse(record, f"the record for {path}").line()
    with _locked(path):
        old = path.read_bytes() if path.exists() else b""
        if old:
            _parse(old.decode("utf-8", errors="replace"), path)
            if not old.endswith(b"\n"):
                old += b"\n"
        atomic_write_bytes(path, old + line.encode("utf-8"))


def read_records(path: str | Path) -> list[EvaluationRecord]:
    """Every record of ``path`` (an absent file has none).

    Raises:
        ResultsFileError: a line that is not a valid record, or of a format newer than this
            zoo's (the message names the file and the line).
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ResultsFileError(f"{path} is not UTF-8 text: not a results file") from None
    return _parse(text, path)


def _parse(text: str, path: Path) -> list[EvaluationRecord]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ResultsFileError(
                f"{path}:{number} is not a JSON record ({exc.msg}); the file is corrupt: "
                "remove or repair that line"
            ) from None
        records.append(EvaluationRecord.parse(data, f"{path}:{number}"))
    return records

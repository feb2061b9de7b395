"""Finding a dataset's files in an ordered list of places, and reading them with their
sha256, so that a missing dataset says everywhere it looked."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from zoo_core.errors import CorruptDatasetError, DatasetNotFoundError
from zoo_core.settings import ZooSettings


def data_dir(settings: ZooSettings, name: str) -> Path | None:
    """``$ZOO_DATA_DIR/<name>``, or ``None`` where ``ZOO_DATA_DIR`` is unset."""
    return None if settings.data_dir is None else Path(settings.data_dir) / name


class Search:
    """The places looked in for one split of one dataset, in order.

    Each wanted file is a tuple of alternative names (``("x-idx3-ubyte",
    "x-idx3-ubyte.gz")``): the first that exists in a place is taken. A place counts only
    when it holds every wanted file.
    """

    def __init__(self, dataset: str, split: str):
        self.dataset, self.split = dataset, split
        self.looked: list[str] = []

    def first(
        self, places: Sequence[tuple[str, Path | None]], wanted: Sequence[tuple[str, ...]]
    ) -> list[Path] | None:
        """The wanted files of the first place that holds them all.

        Args:
            places: ``(label, directory)``; a ``None`` directory is noted as ``label``.
            wanted: alternative names of each file.
        """
        for label, directory in places:
            if directory is None:
                self.looked.append(label)
                continue
            if not directory.is_dir():
                self.looked.append(f"{directory} (missing)")
                continue
            found, missing = [], []
            for names in wanted:
                path = next((directory / n for n in names if (directory / n).is_file()), None)
                if path is None:
                    missing.append(" or ".join(names))
                else:
                    found.append(path)
            if not missing:
                return found
            self.looked.append(f"{directory} (lacks {', '.join(missing)})")
        return None

    def note(self, place: str) -> None:
        """Record a place that is not a directory (a download, a package)."""
        self.looked.append(place)

    def not_found(self, how: str) -> DatasetNotFoundError:
        """The error saying where this search looked and ``how`` to provide the data."""
        return DatasetNotFoundError(
            f"dataset {self.dataset!r} (split {self.split!r}) not found; looked in: "
            f"{'; '.join(self.looked)}; {how}"
        )


def read_file(path: Path, files: dict[str, str]) -> bytes:
    """The bytes of ``path``; records its sha256 in ``files``.

    Raises:
        CorruptDatasetError: the file cannot be read.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptDatasetError(f"{path}: cannot read the file ({exc.strerror})") from None
    files[str(path)] = hashlib.sha256(data).hexdigest()
    return data


def check_sha256(path: Path, data: bytes, expected: str, what: str = "the file") -> None:
    """Raise :class:`CorruptDatasetError` naming ``path`` when ``data`` does not hash to
    ``expected``."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise CorruptDatasetError(
            f"{path}: sha256 mismatch of {what}: expected {expected}, got {actual}; the file "
            f"is corrupt or not the official one: replace it with an intact copy"
        )

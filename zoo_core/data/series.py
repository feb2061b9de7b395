"""The ``sunspots`` time series: yearly sunspot numbers 1700-2008 (NOAA's National
Geophysical Data Center; public domain), as bundled with statsmodels
(``statsmodels/datasets/sunspots/sunspots.csv``).

The CSV is read from the installed package's folder without importing statsmodels (which
is slow). The whole series is one example ``(1, T, 1)`` of raw counts per split: train
holds all years but the last :data:`TEST_YEARS`, test those last years (1979-2008).
"""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path

import numpy as np

from zoo_core.data.files import Search, data_dir, read_file
from zoo_core.dataset import SplitData
from zoo_core.errors import CorruptDatasetError
from zoo_core.settings import ZooSettings

SUNSPOTS_CSV = "sunspots.csv"
TEST_YEARS = 30


def statsmodels_dir() -> Path | None:
    """The folder of the installed statsmodels package (found, not imported)."""
    spec = importlib.util.find_spec("statsmodels")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def parse_sunspots(data: bytes, source: str) -> np.ndarray:
    """The yearly values ``(T,)`` float32 of a ``"YEAR","SUNACTIVITY"`` CSV whose years
    follow each other."""
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
        if not rows or rows[0] != ["YEAR", "SUNACTIVITY"]:
            raise ValueError(
                f"the header is {rows[0] if rows else 'missing'}, expected YEAR,SUNACTIVITY"
            )
        years = [int(float(year)) for year, _ in rows[1:]]
        values = np.array([float(value) for _, value in rows[1:]], dtype=np.float32)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptDatasetError(f"{source}: not the sunspots CSV ({exc})") from None
    if len(years) <= TEST_YEARS or years != list(range(years[0], years[0] + len(years))):
        raise CorruptDatasetError(
            f"{source}: expected more than {TEST_YEARS} consecutive years, got {len(years)} rows"
        )
    if not np.isfinite(values).all() or (values < 0).any():
        raise CorruptDatasetError(f"{source}: a sunspot number is negative or not finite")
    return values


def load_sunspots(split: str, settings: ZooSettings) -> SplitData:
    """One series ``(1, T, 1)`` float32."""
    search = Search("sunspots", split)
    package = statsmodels_dir()
    places = [
        ("$ZOO_DATA_DIR/sunspots (ZOO_DATA_DIR unset)", data_dir(settings, "sunspots")),
        (
            "statsmodels (not installed)",
            None if package is None else package / "datasets" / "sunspots",
        ),
    ]
    paths = search.first(places, [(SUNSPOTS_CSV,)])
    if paths is None:
        raise search.not_found(
            "pip install statsmodels (or pip install 'zoo-core[data]'), or copy its "
            "datasets/sunspots/sunspots.csv into $ZOO_DATA_DIR/sunspots and set ZOO_DATA_DIR"
        )
    files: dict[str, str] = {}
    values = parse_sunspots(read_file(paths[0], files), str(paths[0]))
    part = values[:-TEST_YEARS] if split == "train" else values[-TEST_YEARS:]
    return SplitData(x=part.reshape(1, -1, 1).copy(), files=files)

"""The ``fortunes`` text corpus: the fortune cookies of Debian's packages ``fortunes`` and
``fortunes-min`` (fortune-mod 1.99.1; BSD license per their copyright file).

Each of the 43 files is a list of entries separated by lines holding only ``%``; a
document is one entry (leading and trailing newlines dropped, empty entries skipped), its
label the index of its file in :data:`FORTUNE_FILES` (the topic: ``computers``,
``science``, ...). Documents are numbered in file order, then in order within a file;
every 10th (index ``i % 10 == 9``) is test, the rest train.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from zoo_core.data.files import Search, data_dir, read_file
from zoo_core.dataset import SplitData
from zoo_core.errors import CorruptDatasetError
from zoo_core.settings import ZooSettings

DEBIAN_FORTUNES = Path("/usr/share/games/fortunes")
FORTUNE_FILES = (
    "art",
    "ascii-art",
    "computers",
    "cookie",
    "debian",
    "definitions",
    "disclaimer",
    "drugs",
    "education",
    "ethnic",
    "food",
    "fortunes",
    "goedel",
    "humorists",
    "kids",
    "knghtbrd",
    "law",
    "linux",
    "linuxcookie",
    "literature",
    "love",
    "magic",
    "medicine",
    "men-women",
    "miscellaneous",
    "news",
    "paradoxum",
    "people",
    "perl",
    "pets",
    "platitudes",
    "politics",
    "pratchett",
    "riddles",
    "science",
    "songs-poems",
    "sports",
    "startrek",
    "tao",
    "translate-me",
    "wisdom",
    "work",
    "zippy",
)
TEST_EVERY = 10
_SEPARATOR = re.compile(r"^%$\n?", flags=re.MULTILINE)  # a line holding only %


def split_entries(text: str) -> list[str]:
    """The entries of one fortune file, in order."""
    entries = (entry.strip("\n") for entry in _SEPARATOR.split(text))
    return [entry for entry in entries if entry.strip()]


def load_fortunes(split: str, settings: ZooSettings) -> SplitData:
    """Documents ``list[str]`` and their topic labels ``(N,)``."""
    search = Search("fortunes", split)
    places = [
        ("$ZOO_DATA_DIR/fortunes (ZOO_DATA_DIR unset)", data_dir(settings, "fortunes")),
        ("Debian package fortunes", DEBIAN_FORTUNES),
    ]
    paths = search.first(places, [(name,) for name in FORTUNE_FILES])
    if paths is None:
        raise search.not_found(
            "install the Debian packages fortunes and fortunes-min (apt-get install fortunes), "
            "or copy their files into $ZOO_DATA_DIR/fortunes and set ZOO_DATA_DIR"
        )
    files: dict[str, str] = {}
    docs: list[str] = []
    labels: list[int] = []
    for label, path in enumerate(paths):
        try:
            text = read_file(path, files).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptDatasetError(
                f"{path}: not UTF-8 text (byte offset {exc.start}); replace it with an intact copy"
            ) from None
        entries = split_entries(text)
        docs += entries
        labels += [label] * len(entries)
    keep = [(i % TEST_EVERY == TEST_EVERY - 1) == (split == "test") for i in range(len(docs))]
    x = [doc for doc, k in zip(docs, keep, strict=True) if k]
    y = np.array([label for label, k in zip(labels, keep, strict=True) if k], dtype=np.int64)
    return SplitData(x=x, y=y, files=files)

"""Datasets by name (what every plugin's ``zoo_datasets`` registers, through the catalog),
and one split loaded into the canonical form of its modality."""

from __future__ import annotations

import json
import re
from typing import Any

from zoo_core.catalog import DATASETS, get_catalog
from zoo_core.dataset import Dataset, DatasetSpec, SplitData
from zoo_core.errors import ConfigError, CorruptDatasetError, ZooError
from zoo_core.settings import ZooSettings, get_settings


def list_datasets(modality: str | None = None) -> list[str]:
    """Sorted names of the datasets the core and the plugins define."""
    specs = get_catalog().values(DATASETS)
    return sorted(n for n, s in specs.items() if modality is None or s.modality == modality)


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of dataset ``name``.

    Raises:
        UnknownDatasetError: no plugin defines it (the message lists the closest names).
        DuplicateRegistrationError: two plugins define it.
    """
    return get_catalog().get(DATASETS, name)


def load_dataset(
    name: str, split: str = "train", *, settings: ZooSettings | None = None
) -> Dataset:
    """Load one split of dataset ``name`` in the canonical form of its modality.

    Args:
        name: a name of :func:`list_datasets`.
        split: one of the spec's ``splits``.
        settings: the runtime settings (default: read from the environment now).

    Returns:
        A :class:`Dataset`.

    Raises:
        UnknownDatasetError: no plugin defines ``name``.
        ConfigError: ``split`` is not one of the dataset's splits.
        DatasetNotFoundError: the data is not on this machine (the message says where the
            loader looked and how to provide it).
        CorruptDatasetError: a file is truncated, malformed or fails its checksum, or the
            loader's data does not match the spec.
    """
    spec = dataset_spec(name)
    if split not in spec.splits:
        raise ConfigError(
            f"dataset {name!r} has no split {split!r}; its splits are: {', '.join(spec.splits)}"
        )
    raw = spec.loader(split, settings if settings is not None else get_settings())
    if not isinstance(raw, SplitData):
        raise CorruptDatasetError(
            f"the loader of dataset {name!r} returned {type(raw).__name__}, not SplitData"
        )
    try:
        x, y = _canonical(spec, raw)
        json.dumps(raw.params)
        for path, digest in raw.files.items():
            if not re.fullmatch(r"[0-9a-f]{64}", str(digest)):
                raise ValueError(f"the sha256 of {path} is {digest!r}, not 64 hex digits")
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ZooError):
            raise
        raise CorruptDatasetError(
            f"dataset {name!r} split {split!r} does not match its spec: {exc}; the data or its "
            f"loader is broken"
        ) from None
    return Dataset(spec, split, x, y, raw.files, raw.params)


def _canonical(spec: DatasetSpec, raw: SplitData) -> tuple[Any, Any]:
    """``(x, y)`` as tensors (``x`` a list of strings for text), checked against ``spec``;
    raises ``ValueError`` saying what differs."""
    import torch  # here: importing zoo_core.data does not import torch

    if spec.modality == "text":
        if not isinstance(raw.x, list | tuple) or not all(isinstance(d, str) for d in raw.x):
            raise ValueError("text must be a list of strings")
        x: Any = list(raw.x)
        n = len(x)
    else:
        x = torch.as_tensor(raw.x)
        if x.dtype != torch.float32:
            raise ValueError(f"x has dtype {x.dtype}, expected torch.float32")
        shape = tuple(x.shape[1:])
        if len(shape) != len(spec.shape) or any(
            d is not None and d != s for d, s in zip(spec.shape, shape, strict=True)
        ):
            raise ValueError(f"examples have shape {shape}, expected {spec.shape}")
        n = len(x)
        low, high = {"image": (0.0, 1.0), "audio": (-1.0, 1.0)}.get(spec.modality, (None, None))
        if n and low is not None and not (x.min() >= low and x.max() <= high):
            raise ValueError(f"{spec.modality} values must lie in [{low}, {high}]")
        if n and low is None and not torch.isfinite(x).all():
            raise ValueError("x holds NaN or infinite values")
    if raw.y is None:
        return x, None
    y = torch.as_tensor(raw.y)
    if y.dtype != torch.int64 or tuple(y.shape) != (n,):
        raise ValueError(f"y has dtype {y.dtype} and shape {tuple(y.shape)}, expected int64 ({n},)")
    if spec.classes is not None and n and not (y.min() >= 0 and y.max() < len(spec.classes)):
        raise ValueError(f"labels must lie in 0..{len(spec.classes) - 1} (one per class)")
    return x, y

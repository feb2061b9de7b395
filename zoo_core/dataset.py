"""What a dataset is: its :class:`DatasetSpec` (from the ``zoo_datasets`` hook), what its
loader returns (:class:`SplitData`) and one loaded split (:class:`Dataset`).

Importing this module does not import torch; a loaded :class:`Dataset` holds tensors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zoo_core.card import MODEL_ID_PATTERN, Modality

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class SplitData:
    """What a loader returns for one split; :func:`zoo_core.data.load_dataset` checks it
    against the spec and turns it into a :class:`Dataset`.

    Attributes:
        x: ``(N, *shape)`` float32 numpy array or tensor in the canonical form of the
            modality; for text, a list of ``N`` strings.
        y: ``(N,)`` integer class labels (numpy or tensor), or ``None``.
        files: path of every file read -> its sha256 (hex).
        params: for generated data, the generator's parameters (JSON-serializable); they
            enter the fingerprint.
    """

    x: Any
    y: Any = None
    files: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


class DatasetSpec(BaseModel):
    """How to load one dataset: returned by the ``zoo_datasets`` hook.

    ``loader(split, settings)`` reads (or generates) one split and returns a
    :class:`SplitData`; it may assume that ``split`` is one of ``splits``. It is not part of
    the serialized spec.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=MODEL_ID_PATTERN, max_length=128, description="The dataset's name (lowercase)."
    )
    modality: Modality = Field(description="image, points, audio, sequence or text.")
    shape: tuple[int | None, ...] = Field(
        description="Shape of one example in canonical form, e.g. (1, 28, 28); () for text; "
        "None for a length that differs between splits."
    )
    splits: tuple[str, ...] = Field(min_length=1, description="Names of the splits.")
    classes: tuple[str, ...] | None = Field(
        None, description="Class names, indexed by the labels y; None when unlabelled."
    )
    source: str = Field(description="One line: where the files come from.")
    license: str = Field(description="The data's license, as its source states it.")
    description: str = Field("", description="What the dataset holds and how it is split.")
    loader: Callable[..., Any] = Field(
        exclude=True, repr=False, description="loader(split, settings) -> SplitData."
    )

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        if "\n" in self.source:
            raise ValueError("source must be one line")
        if len(set(self.splits)) != len(self.splits):
            raise ValueError(f"splits {self.splits} name a split twice")
        if (self.modality == "text") != (self.shape == ()):
            raise ValueError("shape must be () for text, and only for text")
        if any(d is not None and d < 1 for d in self.shape):
            raise ValueError(f"shape {self.shape} has a dimension below 1")
        if self.classes is not None and not self.classes:
            raise ValueError("classes must be None or name at least one class")
        return self


class Dataset:
    """One split of a dataset, in the canonical form of its modality.

    Attributes:
        spec: the :class:`DatasetSpec`.
        split: the split's name.
        x: ``torch.Tensor`` ``(N, *spec.shape)``: images float32 ``(N, C, H, W)`` in
            ``[0, 1]``, points ``(N, D)``, sequences ``(N, T, D)``, audio ``(N, T)`` in
            ``[-1, 1]``; for text a ``list[str]`` of documents.
        y: ``(N,)`` int64 class labels, or ``None``.
        files: path of every file read -> its sha256 (hex).
        params: the generator's parameters for generated data (else empty).

    ``data[i]`` is ``(x_i, y_i)`` (``y_i`` is ``None`` when unlabelled), so a
    ``torch.utils.data.DataLoader`` takes it directly; pass ``collate_fn=Dataset.collate``
    where ``y`` is ``None`` or ``x`` is text (torch's default collate refuses ``None``).
    """

    def __init__(
        self,
        spec: DatasetSpec,
        split: str,
        x: torch.Tensor | list[str],
        y: torch.Tensor | None,
        files: dict[str, str],
        params: dict[str, Any] | None = None,
    ):
        self.spec, self.split, self.x, self.y = spec, split, x, y
        self.files = dict(files)
        self.params = dict(params or {})

    @property
    def name(self) -> str:
        return self.spec.name

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.x[index], (None if self.y is None else self.y[index])

    @property
    def fingerprint(self) -> str:
        """sha256 over the name, the split, the sorted file hashes and the generator
        parameters: the same data read from the same files gives the same fingerprint
        wherever the files lie."""
        record = {
            "name": self.spec.name,
            "split": self.split,
            "files": sorted(self.files.values()),
            "params": self.params,
        }
        text = json.dumps(record, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @staticmethod
    def collate(batch: Sequence[tuple[Any, Any]]) -> tuple[Any, Any]:
        """Stack a list of ``data[i]`` into ``(x, y)``: ``x`` a tensor (or a list of
        strings for text), ``y`` a tensor or ``None``."""
        import torch

        xs, ys = zip(*batch, strict=True)
        x = list(xs) if isinstance(xs[0], str) else torch.stack(xs)
        y = None if ys[0] is None else torch.stack(ys)
        return x, y

    def __repr__(self) -> str:
        return f"Dataset({self.spec.name!r}, split={self.split!r}, n={len(self)})"

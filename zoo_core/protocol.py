"""Protocols: everything an evaluation number depends on, named and hashed.

A protocol fixes the dataset split, how many reference and generated samples, the feature
extractor and the sha256 of its weights, the preprocessing, the sampler's keyword arguments
per family and the seed. Its :attr:`Protocol.hash` covers all of these (not its name or
description), so two records are comparable exactly when their hashes are equal. The
shipped protocols live in ``zoo_core/protocols/*.yaml``, one per file.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zoo_core.card import MODEL_ID_PATTERN, Modality
from zoo_core.errors import ConfigError, UnknownProtocolError
from zoo_core.validation import one_line


class Preprocessing(BaseModel):
    """How samples and reference data become the extractor's input."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resize: Literal["bilinear", "bicubic", "nearest", "none"] = Field(
        "bilinear",
        description="Resize to the extractor's input size: bilinear as pytorch-fid, "
        "bicubic with antialiasing, nearest, or none (sizes must match).",
    )
    quantize: bool = Field(
        True,
        description="Round images to 8 bits before feature extraction, as when samples are "
        "saved as PNG files (the convention FID numbers are reported under).",
    )


class Protocol(BaseModel):
    """One evaluation protocol (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=MODEL_ID_PATTERN, description="The protocol's public name.")
    description: str = Field("", description="What it measures and whose number it matches.")
    modality: Modality = Field(description="The sample form of the models it applies to.")
    dataset: str = Field(description="The reference dataset (and the models' training set).")
    split: str = Field(description="The reference split.")
    n_reference: int | None = Field(
        None, ge=1, description="Reference examples (the first ones); None: the whole split."
    )
    n_samples: int = Field(
        ge=1, description="Generated samples (or, for likelihoods, evaluated examples)."
    )
    min_samples: int = Field(
        1, ge=1, description="Fewest samples the metrics are meaningful from (--allow-small)."
    )
    metrics: tuple[str, ...] = Field(min_length=1, description="Metric names, primary first.")
    extractor: str | None = Field(None, description="Feature extractor id (feature metrics).")
    extractor_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="The extractor's weights sha256; None: recorded from the run.",
    )
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    sample_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Family -> keyword arguments of sample() (e.g. the diffusion sampler).",
    )
    autocast: Literal["none", "bfloat16"] = Field(
        "none", description="Sample under torch.autocast with this dtype (none: float32)."
    )
    seed: int = Field(0, ge=0, description="The sampling seed.")
    batch_size: int = Field(
        250, ge=1, description="Samples per shard: the unit of caching, resuming and sharding."
    )
    kid_subsets: int = Field(100, ge=1, description="KID: number of random subsets.")
    kid_subset_size: int = Field(1000, ge=2, description="KID: samples per subset.")
    nearest_k: int = Field(3, ge=1, description="Precision/recall: k of the k-NN balls.")
    density_k: int = Field(5, ge=1, description="Density/coverage: k of the k-NN balls.")
    prdc_samples: int | None = Field(
        None, ge=2, description="Precision/recall/density/coverage on the first N of each side."
    )
    is_splits: int = Field(10, ge=1, description="Inception Score: number of splits.")
    nfe_sweep: dict[str, tuple[dict[str, Any], ...]] = Field(
        default_factory=dict,
        description="Family -> sample_options variants the leaderboard also runs (FID vs NFE).",
    )
    variant: str | None = Field(None, description="Name of a sweep variant (None: the base).")

    @model_validator(mode="after")
    def _consistent(self) -> Protocol:
        if self.min_samples > self.n_samples:
            raise ValueError(f"min_samples {self.min_samples} exceeds n_samples {self.n_samples}")
        return self

    @property
    def hash(self) -> str:
        """sha256 of everything the numbers depend on (not the name or description)."""
        record = self.model_dump(mode="json", exclude={"name", "description", "nfe_sweep"})
        text = json.dumps(record, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def title(self) -> str:
        return self.name if self.variant is None else f"{self.name}[{self.variant}]"

    def options_for(self, family: str | None) -> dict[str, Any]:
        """The sample() keyword arguments for a model of ``family``."""
        return dict(self.sample_options.get(family or "", {}))

    def replace(self, **changes: Any) -> Protocol:
        """A validated copy with ``changes`` (a new hash wherever the numbers may change)."""
        try:
            return Protocol.model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            raise ConfigError(f"protocol {self.name}: {one_line(exc)}") from None

    def with_options(self, family: str | None, options: dict[str, Any]) -> Protocol:
        """The variant of this protocol whose ``family`` models sample with ``options`` over
        the protocol's own: its own hash, named by the values in key order (``ddim-10`` for
        ``{"sampler": "ddim", "steps": 10}``), the same name and hash however it is asked
        for (a sweep of the leaderboard, ``zoo eval --set``, ``zoo_core.evaluate``)."""
        if not options:
            return self
        merged = {**self.options_for(family), **options}
        label = "-".join(str(options[key]) for key in sorted(options))
        return self.replace(sample_options={family or "": merged}, variant=label, nfe_sweep={})

    def variants(self, family: str | None) -> list[Protocol]:
        """The sweep variants of this protocol for ``family`` (leaderboard curves)."""
        return [self.with_options(family, o) for o in self.nfe_sweep.get(family or "", ())]


@cache
def _shipped() -> dict[str, Protocol]:
    protocols = {}
    for entry in sorted(resources.files("zoo_core").joinpath("protocols").iterdir(), key=str):
        if not entry.name.endswith(".yaml"):
            continue
        data = yaml.safe_load(entry.read_text(encoding="utf-8"))
        try:
            protocol = Protocol.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"protocol file {entry.name}: {one_line(exc)}") from None
        if f"{protocol.name}.yaml" != entry.name:
            raise ConfigError(f"protocol file {entry.name} names {protocol.name!r}")
        protocols[protocol.name] = protocol
    return protocols


def list_protocols(modality: str | None = None) -> list[str]:
    """Names of the shipped protocols (optionally only those of one modality)."""
    return sorted(
        name for name, p in _shipped().items() if modality is None or p.modality == modality
    )


def get_protocol(name: str | Protocol) -> Protocol:
    """A shipped protocol by name (a :class:`Protocol` is returned as is).

    Raises:
        UnknownProtocolError: no protocol of that name (with the closest names).
    """
    if isinstance(name, Protocol):
        return name
    protocols = _shipped()
    if name not in protocols:
        close = difflib.get_close_matches(name, protocols, n=3)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        raise UnknownProtocolError(
            f"unknown protocol {name!r}; {hint}known: {', '.join(sorted(protocols))}"
        )
    return protocols[name]

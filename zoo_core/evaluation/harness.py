"""The evaluation harness: one sampling pass and one feature pass per (model, protocol),
cached in shards, sharded across processes by global sample index.

Samples are drawn in shards of ``protocol.batch_size`` consecutive indices; shard ``k``
holds samples ``k*B .. (k+1)*B - 1`` of the protocol's seed and is written to disk
atomically, so an interrupted run resumes where it stopped. Under ``torchrun`` rank ``r``
draws the shards ``k ≡ r (mod world size)`` and the per-shard features are all-gathered in
shard order; by the seeding rule, and because each shard is sampled and featurized as one
batch whatever the number of processes, the numbers equal a single-process run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from zoo_core.data import Dataset, load_dataset
from zoo_core.devices import default_device, resolve_device
from zoo_core.distributed import Distributed
from zoo_core.errors import (
    ChecksumMismatchError,
    ConfigError,
    EvaluationError,
    EvaluationTimeoutError,
)
from zoo_core.evaluation.extractors import get_extractor
from zoo_core.evaluation.stats import Reference, extract, quantize, reference_statistics
from zoo_core.evaluation.store import read_entry, tensor_checksum, write_entry
from zoo_core.extractor import FeatureExtractor
from zoo_core.generator import Generator
from zoo_core.protocol import Protocol
from zoo_core.settings import get_settings

log = logging.getLogger(__name__)

PREVIEW = 64  # samples kept for the leaderboard's grid


@dataclass
class Generated:
    """What the sampling pass leaves for the metrics.

    Attributes:
        n: samples drawn (always the protocol's ``n_samples``).
        features, logits: ``(n, D)`` / ``(n, K)`` float32 in the extractor's space (None
            without an extractor, or a head).
        samples: every sample for small modalities (points, sequences, audio, text) and
            image protocols without an extractor; else None.
        preview: the first ``PREVIEW`` samples.
        nonfinite: how many samples held NaN or infinity (replaced by 0 before features).
        seconds: sampling time summed over shards (as drawn, also when read from cache).
    """

    n: int
    features: torch.Tensor | None
    logits: torch.Tensor | None
    samples: Any
    preview: Any
    nonfinite: int
    seconds: float


@dataclass
class Evaluation:
    """One (generator, protocol) evaluation: the passes every evaluator shares.

    Args:
        generator: the model (moved to ``device``).
        protocol: the protocol, seed included.
        device: where to sample and extract; default CUDA when available, else the CPU.
        workdir: where sample shards are cached (default ``$ZOO_CACHE_DIR/samples``);
            ``None`` with ``cache=False`` keeps nothing on disk.
        progress: progress bars (on rank 0).
        deadline: ``time.monotonic()`` past which the run stops between shards.
    """

    generator: Generator
    protocol: Protocol
    device: torch.device | str | None = None
    workdir: Path | None = None
    cache: bool = True
    progress: bool = False
    deadline: float | None = None
    dist: Distributed | None = None
    invalid: dict[str, str] = field(default_factory=dict)
    _generated: Generated | None = field(default=None, repr=False)
    _reference: Reference | None = field(default=None, repr=False)
    _extractor: FeatureExtractor | None = field(default=None, repr=False)
    _options: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.device is None:
            self.device = default_device()
        if self.dist is None:
            self.dist = Distributed(0, 1, resolve_device(self.device))
        self.device = self.dist.device
        self.generator.to(self.device).eval()

    # ------------------------------------------------------------------ identity
    @property
    def family(self) -> str | None:
        card = self.generator.card
        return card.family if card is not None else None

    @property
    def options(self):
        """The protocol's sample options for this model's family, validated."""
        if self._options is None:
            self._options = self.generator.parse_sample_options(
                self.protocol.options_for(self.family)
            )
        return self._options

    @property
    def weights_hash(self) -> str:
        return weights_hash(self.generator)

    @property
    def sampled(self) -> Generated | None:
        """The sampling pass, when a metric has run it (``None`` before)."""
        return self._generated

    @property
    def extractor_sha256(self) -> str | None:
        """The weights sha256 of the extractor the run used (``None``: it used none)."""
        return self._extractor.weights_sha256 if self._extractor is not None else None

    # ------------------------------------------------------------------ extractor
    def extractor(self) -> FeatureExtractor:
        """The protocol's feature extractor, its weights checked against the protocol."""
        if self._extractor is None:
            extractor = get_extractor(self.protocol.extractor, device=self.device)
            pinned = self.protocol.extractor_sha256
            if pinned is not None and extractor.weights_sha256 != pinned:
                raise ChecksumMismatchError(
                    f"weights of the extractor {extractor.id}", pinned, extractor.weights_sha256,
                    f"protocol {self.protocol.name} was defined with other weights",
                )  # fmt: skip
            self._extractor = extractor
        return self._extractor

    # ------------------------------------------------------------------ reference
    def reference(self) -> Reference:
        """Reference features of the protocol's split (cached by content; built on rank 0
        first, then read by the others)."""
        if self._reference is None:
            p = self.protocol
            self._reference = self.dist.first_on_main(
                lambda: reference_statistics(
                    p.dataset, p.split, self.extractor(), p.preprocessing, n=p.n_reference,
                    batch_size=p.batch_size, device=self.device,
                    progress=self.progress and self.dist.is_main,
                )
            )  # fmt: skip
        return self._reference

    def reference_data(self) -> Dataset:
        """The protocol's split, the first ``n_samples`` examples (likelihood metrics)."""
        data = load_dataset(self.protocol.dataset, split=self.protocol.split)
        if len(data) < self.protocol.n_samples:
            raise ConfigError(
                f"{data.name}/{data.split} has {len(data)} examples; protocol "
                f"{self.protocol.name} asks for {self.protocol.n_samples}: pass a smaller --n"
            )
        return data

    # ------------------------------------------------------------------ sampling pass
    def shard_dir(self) -> Path | None:
        if not self.cache:
            return None
        root = self.workdir or get_settings().cache_dir / "samples"
        return root / f"{self.generator.name}-{self.weights_hash[:12]}" / self.protocol.hash[:16]

    def shards(self) -> list[tuple[int, int, int]]:
        """``(k, start, stop)`` of every shard of the protocol."""
        n, size = self.protocol.n_samples, self.protocol.batch_size
        return [(k, s, min(n, s + size)) for k, s in enumerate(range(0, n, size))]

    def generated(self) -> Generated:
        """The sampling and feature pass (once per evaluation)."""
        if self._generated is None:
            self._generated = self._sample_and_featurize()
        return self._generated

    def _sample_and_featurize(self) -> Generated:
        p = self.protocol
        keep_all = self.generator.modality != "image" or p.extractor is None
        extractor = self.extractor() if p.extractor is not None else None
        mine = [s for s in self.shards() if s[0] % self.dist.world_size == self.dist.rank]
        if self.progress and self.dist.is_main:
            from tqdm.auto import tqdm

            mine = tqdm(mine, desc=f"{self.generator.name} / {p.title}", unit="shard")
        parts = {}
        for k, start, stop in mine:
            samples, nonfinite, seconds = self._shard(k, start, stop)
            part: dict[str, Any] = {"n": stop - start, "nonfinite": nonfinite, "seconds": seconds}
            if extractor is not None:
                images = (
                    samples.to(torch.float32) / 255.0 if samples.dtype == torch.uint8 else samples
                )
                part["features"], part["logits"] = extract(
                    images, extractor, p.preprocessing, batch_size=len(images), device=self.device
                )
            if keep_all:
                part["samples"] = _to_canonical(samples)
            elif start < PREVIEW:
                part["samples"] = _to_canonical(samples[: PREVIEW - start])
            parts[k] = part
        merged: dict[int, dict[str, Any]] = {}
        for gathered in self.dist.gather_object(parts):
            merged.update(gathered)
        ordered = [merged[k] for k, _, _ in self.shards()]
        n = sum(part["n"] for part in ordered)
        if n != p.n_samples or len(ordered) != len(self.shards()):
            raise EvaluationError(f"drew {n} samples, protocol {p.title} asks {p.n_samples}")
        return Generated(
            n=n,
            features=_cat([part.get("features") for part in ordered]),
            logits=_cat([part.get("logits") for part in ordered]),
            samples=_join([part["samples"] for part in ordered]) if keep_all else None,
            preview=_join([part["samples"] for part in ordered if "samples" in part], PREVIEW),
            nonfinite=sum(part["nonfinite"] for part in ordered),
            seconds=sum(part["seconds"] for part in ordered),
        )

    def _shard(self, k: int, start: int, stop: int) -> tuple[Any, int, float]:
        """Shard ``k``: from the cache when it is intact, else drawn and cached."""
        directory = self.shard_dir()
        path = None if directory is None else directory / f"shard-{k:06d}.safetensors"
        expect = {"protocol": self.protocol.hash, "weights": self.weights_hash,
                  "start": start, "stop": stop}  # fmt: skip
        entry = None if path is None else read_entry(path, expect)
        if entry is not None:
            tensors, record = entry
            return _decode(tensors, record), record["nonfinite"], record["seconds"]
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise EvaluationTimeoutError(
                f"{self.generator.name} ran past its time limit at shard {k} of "
                f"{len(self.shards())} (the finished shards are cached; rerun to resume)"
            )
        began = time.perf_counter()
        samples = self.draw(stop - start, start=start)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - began
        tensors, nonfinite = _encode(samples, self.generator.modality)
        record = {
            **expect,
            "nonfinite": nonfinite,
            "seconds": seconds,
            "device": str(self.device),
            "kind": "text" if isinstance(samples, list) else "tensor",
        }
        if path is not None:
            write_entry(path, tensors, record)
        return _decode(tensors, record), nonfinite, seconds

    def draw(self, n: int, *, start: int = 0) -> Any:
        """Samples ``start .. start + n - 1`` of the protocol's seed, with its options."""
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if self.protocol.autocast == "bfloat16"
            else contextlib.nullcontext()
        )
        options = self.protocol.options_for(self.family)
        with autocast:
            return self.generator.sample(n, seed=self.protocol.seed, start=start,
                                         batch_size=n, **options)  # fmt: skip

    # ------------------------------------------------------------------ likelihood pass
    def log_likelihoods(self) -> torch.Tensor:
        """Bits per dimension of the first ``n_samples`` examples of the split, ``(n,)``
        float64, in chunks of ``batch_size`` sharded like the samples."""
        data = self.reference_data()
        n = self.protocol.n_samples
        mine = [s for s in self.shards() if s[0] % self.dist.world_size == self.dist.rank]
        if self.progress and self.dist.is_main:
            from tqdm.auto import tqdm

            mine = tqdm(mine, desc=f"{self.generator.name} / {self.protocol.title}", unit="batch")
        parts = {}
        for k, start, stop in mine:
            x = data.x[start:stop]
            if isinstance(x, torch.Tensor):
                x = x.to(self.device)
            with torch.no_grad():
                parts[k] = self.generator.bits_per_dim(x).double().cpu()
        merged: dict[int, torch.Tensor] = {}
        for gathered in self.dist.gather_object(parts):
            merged.update(gathered)
        values = torch.cat([merged[k] for k, _, _ in self.shards()])
        if values.numel() != n:
            raise EvaluationError(
                f"{self.generator.name} gave {values.numel()} likelihoods for {n} examples"
            )
        return values


def weights_hash(generator: Generator) -> str:
    """sha256 over the model's weight files (name and hash of each), or over its state
    dict when it was not loaded from files."""
    digest = hashlib.sha256()
    if generator.weights_sha256:
        for name, value in sorted(generator.weights_sha256.items()):
            digest.update(f"{name}={value};".encode())
        return digest.hexdigest()
    return tensor_checksum(generator.state_dict())


def _encode(samples: Any, modality: str) -> tuple[dict[str, torch.Tensor], int]:
    """Samples as the tensors of a shard (images as 8-bit), and the non-finite count."""
    if isinstance(samples, list):
        blob = json.dumps(samples).encode("utf-8")
        return {"text": torch.frombuffer(bytearray(blob), dtype=torch.uint8)}, 0
    samples = samples.detach().to("cpu", torch.float32)
    bad = ~torch.isfinite(samples.flatten(1)).all(dim=1)
    nonfinite = int(bad.sum())
    if nonfinite:
        samples = torch.where(torch.isfinite(samples), samples, torch.zeros_like(samples))
    if modality == "image":
        return {"samples": (quantize(samples) * 255).round().to(torch.uint8)}, nonfinite
    return {"samples": samples}, nonfinite


def _decode(tensors: dict[str, torch.Tensor], record: dict[str, Any]) -> Any:
    if record.get("kind") == "text":
        return json.loads(bytes(tensors["text"].numpy()).decode("utf-8"))
    return tensors["samples"]


def _to_canonical(samples: Any) -> Any:
    if isinstance(samples, torch.Tensor) and samples.dtype == torch.uint8:
        return samples.to(torch.float32) / 255.0
    return samples


def _cat(parts: list[torch.Tensor | None]) -> torch.Tensor | None:
    return None if not parts or parts[0] is None else torch.cat(parts)


def _join(parts: list[Any], limit: int | None = None) -> Any:
    if not parts:
        return None
    joined = [x for part in parts for x in part] if isinstance(parts[0], list) else torch.cat(parts)
    return joined if limit is None else joined[:limit]

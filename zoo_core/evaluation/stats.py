"""Reference statistics: the features of a dataset split in an extractor's space, cached by
content.

The cache key is a sha256 over the dataset's fingerprint (the hashes of the files it was
read from, its split and generator parameters), the number of examples, the
preprocessing and the extractor's id and weights sha256, so that new files, another
resize or other weights can never be served stale statistics. Entries live in
``$ZOO_CACHE_DIR/stats/<key>.safetensors``; a corrupt one is detected by its checksum and
rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from zoo_core.data import load_dataset
from zoo_core.errors import ConfigError
from zoo_core.evaluation.frechet import feature_statistics
from zoo_core.evaluation.store import read_entry, write_entry
from zoo_core.extractor import FeatureExtractor, preprocess
from zoo_core.protocol import Preprocessing
from zoo_core.settings import get_settings

log = logging.getLogger(__name__)


@dataclass
class Reference:
    """Features of the reference data: ``features`` ``(N, D)`` float32, ``logits`` or
    ``None``, and their float64 mean and covariance."""

    key: str
    features: torch.Tensor
    logits: torch.Tensor | None
    mu: torch.Tensor
    sigma: torch.Tensor
    path: Path | None = None


def reference_key(
    fingerprint: str, n: int, preprocessing: Preprocessing, extractor: FeatureExtractor
) -> str:
    record = {
        "dataset": fingerprint,
        "n": n,
        "preprocessing": preprocessing.model_dump(mode="json"),
        "extractor": extractor.id,
        "extractor_sha256": extractor.weights_sha256,
    }
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] rounded to 8 bits (as a PNG round trip), float32."""
    return torch.round(images.to(torch.float32).clamp(0.0, 1.0) * 255.0) / 255.0


@torch.no_grad()
def extract(
    images: torch.Tensor,
    extractor: FeatureExtractor,
    preprocessing: Preprocessing,
    *,
    batch_size: int = 250,
    device: torch.device | None = None,
    progress: bool = False,
    desc: str = "features",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features (and logits) of ``images`` ``(N, C, H, W)`` in [0, 1], on the CPU."""
    device = device or next(extractor.parameters()).device
    feats, logits = [], []
    starts = range(0, len(images), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="batch")
    for start in starts:
        x = images[start : start + batch_size]
        if preprocessing.quantize:
            x = quantize(x)
        out = extractor(preprocess(x.to(device), extractor, preprocessing.resize))
        feats.append(out["features"].float().cpu())
        if "logits" in out:
            logits.append(out["logits"].float().cpu())
    return torch.cat(feats), (torch.cat(logits) if logits else None)


def reference_statistics(
    dataset: str,
    split: str,
    extractor: FeatureExtractor,
    preprocessing: Preprocessing,
    *,
    n: int | None = None,
    batch_size: int = 250,
    device: torch.device | None = None,
    progress: bool = False,
    rebuild: bool = False,
) -> Reference:
    """The cached reference features of ``dataset``'s ``split`` (the first ``n``
    examples; all when ``None``), computed and cached on a miss or a corrupt entry.

    Raises:
        DatasetNotFoundError, UnknownDatasetError: the data is not here.
        ConfigError: ``n`` exceeds the split, or the data is not images.
    """
    data = load_dataset(dataset, split=split)
    if data.spec.modality != "image":
        raise ConfigError(f"reference features need images; {dataset} holds {data.spec.modality}")
    if n is not None and n > len(data):
        raise ConfigError(f"{dataset}/{split} has {len(data)} examples, the protocol asks {n}")
    count = len(data) if n is None else n
    key = reference_key(data.fingerprint, count, preprocessing, extractor)
    path = get_settings().cache_dir / "stats" / f"{key}.safetensors"
    entry = None if rebuild else read_entry(path, {"key": key})
    if entry is not None:
        tensors, _ = entry
        log.info("reference statistics %s from %s", key[:12], path)
        return Reference(key, tensors["features"], tensors.get("logits"), tensors["mu"],
                         tensors["sigma"], path)  # fmt: skip
    log.info("computing reference features of %s/%s with %s", dataset, split, extractor.id)
    features, logits = extract(data.x[:count], extractor, preprocessing, batch_size=batch_size,
                               device=device, progress=progress,
                               desc=f"reference {dataset}/{split}")  # fmt: skip
    mu, sigma = (torch.as_tensor(a) for a in feature_statistics(features.double()))
    tensors = {"features": features, "mu": mu, "sigma": sigma}
    if logits is not None:
        tensors["logits"] = logits
    record = {
        "key": key,
        "dataset": dataset,
        "split": split,
        "fingerprint": data.fingerprint,
        "n": count,
        "extractor": extractor.id,
        "extractor_sha256": extractor.weights_sha256,
        "preprocessing": preprocessing.model_dump(mode="json"),
    }
    write_entry(path, tensors, record)
    return Reference(key, features, logits, mu, sigma, path)

"""Evaluate one model under one protocol and make its provenance record."""

from __future__ import annotations

import datetime
import logging
import platform
import time
from pathlib import Path
from typing import Any

import torch

from zoo_core.errors import ConfigError, TooFewSamplesError
from zoo_core.evaluation.harness import Evaluation, weights_hash
from zoo_core.evaluation.protocol import Protocol, get_protocol
from zoo_core.evaluation.results import FORMAT
from zoo_core.evaluator import Evaluator
from zoo_core.generator import Generator

log = logging.getLogger(__name__)


def evaluators() -> dict[str, type[Evaluator]]:
    """Metric name -> evaluator class, from every plugin's ``zoo_evaluators``."""
    from zoo_core.plugin_manager import collect_mapping

    entries, errors = collect_mapping("zoo_evaluators")
    if errors:
        raise next(iter(errors.values()))
    return {name: entry.value for name, entry in entries.items()}


def resolve_protocol(
    protocol: str | Protocol, *, n: int | None = None, allow_small: bool = False
) -> Protocol:
    """The protocol, with ``n`` samples where given (and KID subsets no larger than ``n``).

    Raises:
        TooFewSamplesError: ``n`` is below the protocol's minimum and not ``allow_small``.
    """
    protocol = get_protocol(protocol)
    if n is None or n == protocol.n_samples:
        return protocol
    if n < protocol.min_samples and not allow_small:
        raise TooFewSamplesError(
            f"protocol {protocol.name} needs at least {protocol.min_samples} samples for "
            f"{protocol.metrics[0]}, --n asks {n}; pass --allow-small to compute it anyway "
            "(the result is recorded under its own protocol hash, never ranked with the full one)"
        )
    # A smaller run keeps its KID subsets within the samples it has.
    return protocol.replace(
        n_samples=n,
        min_samples=min(protocol.min_samples, n),
        kid_subset_size=max(2, min(protocol.kid_subset_size, n)),
    )


def evaluate_model(
    model: str | Generator,
    protocol: str | Protocol,
    *,
    device: torch.device | str | None = None,
    n: int | None = None,
    allow_small: bool = False,
    workdir: Path | None = None,
    cache: bool = True,
    progress: bool = False,
    timeout: float | None = None,
    dist: Any = None,
) -> dict[str, Any]:
    """Evaluate ``model`` (an id or a Generator) under ``protocol``; return its record.

    Every metric of the protocol is computed from one sampling pass and one feature pass.
    A metric whose capability the model lacks is skipped with the reason; values computed
    from non-finite samples are marked invalid and the record is ``failed`` with the count.

    Raises:
        UnknownProtocolError: no protocol of that name.
        TooFewSamplesError: ``n`` below the protocol's minimum without ``allow_small``.
        ConfigError: a modality mismatch or an unknown metric.
        EvaluationTimeoutError: the evaluation ran past its time limit.
        ZooError: whatever loading the model raises.
    """
    protocol = resolve_protocol(protocol, n=n, allow_small=allow_small)
    if isinstance(model, str):
        from zoo_core.loading import load

        model = load(model)
    if model.modality != protocol.modality:
        raise ConfigError(
            f"protocol {protocol.name} is for {protocol.modality} models; "
            f"{model.name} samples {model.modality}"
        )
    known = evaluators()
    unknown = [m for m in protocol.metrics if m not in known]
    if unknown:
        raise ConfigError(
            f"protocol {protocol.name} asks for unknown metric(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    began = time.monotonic()
    deadline = None if timeout is None else began + timeout
    run = Evaluation(model, protocol, device=device, workdir=workdir, cache=cache,
                     progress=progress, deadline=deadline, dist=dist)  # fmt: skip
    metrics: dict[str, float] = {}
    skipped: dict[str, str] = {}
    lower: dict[str, bool] = {}
    done: set[type[Evaluator]] = set()
    for name in protocol.metrics:
        cls = known[name]
        if cls in done:
            continue
        done.add(cls)
        missing = sorted(cls.requires - model.capabilities)
        if missing or model.modality not in cls.modalities:
            why = (f"{model.name} lacks the capability {', '.join(missing)}" if missing
                   else f"{cls.__name__} does not apply to {model.modality} samples")  # fmt: skip
            for metric in cls.metrics:
                skipped[metric] = why
            continue
        metrics.update(cls().compute(run))
        lower.update(cls.lower_is_better)
    return make_record(run, metrics, skipped, lower, time.monotonic() - began)


def make_record(
    run: Evaluation,
    metrics: dict[str, float],
    skipped: dict[str, str],
    lower: dict[str, bool],
    duration: float,
) -> dict[str, Any]:
    """The provenance record of one finished evaluation."""
    model, protocol = run.generator, run.protocol
    gen = run._generated
    error = None
    if gen is not None and gen.nonfinite:
        error = f"{gen.nonfinite} of {gen.n} samples were NaN or Inf"
    extractor_sha = run._extractor.weights_sha256 if run._extractor is not None else None
    resolved = protocol
    if protocol.extractor is not None and protocol.extractor_sha256 is None and extractor_sha:
        resolved = protocol.replace(extractor_sha256=extractor_sha)
    speed = {k: metrics.pop(k) for k in ("samples_per_s", "latency_s", "nfe") if k in metrics}
    if speed:
        speed["batch_size"] = protocol.batch_size
    card = model.card
    return {
        **_common(model.name, card, resolved, run.device, run.dist.world_size, duration),
        "weights_sha256": dict(model.weights_sha256),
        "weights_hash": weights_hash(model),
        "status": "ok" if error is None else "failed",
        "error": error,
        "metrics": metrics,
        "invalid": dict(run.invalid),
        "skipped": skipped,
        "lower_is_better": {k: v for k, v in lower.items() if k in metrics},
        "speed": speed,
        "extractor_sha256": extractor_sha,
    }


def failed_record(
    model_id: str, protocol: Protocol, error: BaseException, duration: float
) -> dict[str, Any]:
    """The record of an evaluation that raised (or timed out): the reason in one line."""
    from zoo_core.registry import model_card

    try:
        card = model_card(model_id)
    except Exception:
        card = None
    reason = " ".join(f"{type(error).__name__}: {error}".split())
    return {
        **_common(model_id, card, protocol, None, 1, duration),
        "weights_sha256": {},
        "weights_hash": None,
        "status": "failed",
        "error": reason,
        "metrics": {},
        "invalid": {},
        "skipped": {},
        "lower_is_better": {},
        "speed": {},
        "extractor_sha256": None,
    }


def _common(
    model_id: str, card, protocol: Protocol, device, world_size: int, duration: float
) -> dict[str, Any]:
    """The fields every record has: what was evaluated, under what, where and when."""
    return {
        "format": FORMAT,
        "model": model_id,
        "family": card.family if card else None,
        "versions": versions(card.plugin if card else None),
        "protocol": protocol.model_dump(mode="json", exclude={"nfe_sweep"}),
        "protocol_name": protocol.name,
        "protocol_hash": protocol.hash,
        "variant": protocol.variant,
        "n_samples": protocol.n_samples,
        "seed": protocol.seed,
        "environment": environment(device, world_size),
        "reported": _reported(card, protocol),
        "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": round(duration, 3),
    }


def _reported(card, protocol: Protocol) -> dict[str, float]:
    """The paper's figures from the card, where the card says they are under this protocol."""
    if card is None or not card.reported or card.reported.get("protocol") != protocol.name:
        return {}
    return {k: v for k, v in card.reported.items() if k != "protocol"}


def versions(plugin: str | None) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import zoo_core

    out = {"zoo-core": zoo_core.__version__}
    if plugin and plugin != "zoo-core":
        try:
            out[plugin] = version(plugin)
        except PackageNotFoundError:
            out[plugin] = "unknown"
    return out


def environment(device: torch.device | None, world_size: int) -> dict[str, Any]:
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": name,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "world_size": world_size,
    }

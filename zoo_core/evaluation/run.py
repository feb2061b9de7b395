"""Evaluate one model under one protocol and make its provenance record: ``zoo_core.evaluate``.

This module owns what a run measures: the protocol resolved (a name or a ``Protocol``, with
``n``, ``seed`` and sampling-option ``overrides``, a variant named one way wherever it is
asked for), checked against the evaluators of its metrics (their declared facts: whether
they read features, what they require, their direction), run through the harness, and
recorded as a typed :class:`~zoo_core.record.EvaluationRecord`. ``zoo eval`` and ``zoo
leaderboard`` only parse their options, call it and print.
"""

from __future__ import annotations

import logging
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

import zoo_core
from zoo_core.card import ModelCard
from zoo_core.catalog import architecture_class
from zoo_core.devices import default_device
from zoo_core.distributed import Distributed
from zoo_core.errors import ConfigError, TooFewSamplesError
from zoo_core.evaluation.facts import metric_evaluators
from zoo_core.evaluation.harness import Evaluation, weights_hash
from zoo_core.generator import Generator
from zoo_core.loading import load
from zoo_core.protocol import Protocol, get_protocol
from zoo_core.record import EvaluationRecord, Speed, utc_now
from zoo_core.registry import model_card

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- protocols
def resolve_protocol(
    protocol: str | Protocol,
    *,
    n: int | None = None,
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
    family: str | None = None,
    allow_small: bool = False,
) -> Protocol:
    """The protocol a run measures.

    Args:
        protocol: a shipped protocol's name, or a ``Protocol``.
        n: samples (or examples) instead of the protocol's count; KID subsets shrink to fit.
        seed: the sampling seed instead of the protocol's.
        overrides: sampling options over the protocol's, for models of ``family``: the
            variant of :meth:`Protocol.with_options` (named as the leaderboard's sweeps).
        family: the model family the overrides are for.
        allow_small: allow ``n`` below the protocol's minimum (its own hash, never ranked
            with the full protocol).

    Raises:
        UnknownProtocolError: no protocol of that name.
        TooFewSamplesError: ``n`` below the protocol's minimum without ``allow_small``.
        UnknownMetricError: the protocol names a metric no evaluator computes.
        ConfigError: a feature metric without an extractor, or a bad value.
    """
    protocol = get_protocol(protocol)
    if n is not None and n != protocol.n_samples:
        if n < protocol.min_samples and not allow_small:
            raise TooFewSamplesError(
                f"protocol {protocol.name} needs at least {protocol.min_samples} samples for "
                f"{protocol.metrics[0]}, --n asks {n}; pass --allow-small to compute it anyway "
                "(the result is recorded under its own protocol hash, never ranked with the "
                "full one)"
            )
        # A smaller run keeps its KID subsets within the samples it has.
        protocol = protocol.replace(
            n_samples=n,
            min_samples=min(protocol.min_samples, n),
            kid_subset_size=max(2, min(protocol.kid_subset_size, n)),
        )
    if seed is not None:
        protocol = protocol.replace(seed=seed)
    if overrides:
        protocol = protocol.with_options(family, overrides)
    featured = sorted(n for n, c in metric_evaluators(protocol).items() if c.features)
    if featured and protocol.extractor is None:
        raise ConfigError(
            f"protocol {protocol.name}: metrics {featured} need an extractor; name one "
            "(inception-fid, fashion-net, timm:<model name>)"
        )
    return protocol


def applies(card: ModelCard, protocol: Protocol) -> bool:
    """Whether ``protocol`` evaluates the model of ``card``: the same modality and dataset,
    and the capabilities its primary metric requires."""
    if card.modality != protocol.modality or card.dataset != protocol.dataset:
        return False
    primary = metric_evaluators(protocol)[protocol.metrics[0]]
    return primary.requires <= architecture_class(card.architecture).capabilities


# ----------------------------------------------------------------------------- evaluating
def evaluate(
    model: str | Generator,
    protocol: str | Protocol,
    *,
    n: int | None = None,
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
    device: torch.device | str | None = None,
    weights: str | Path | None = None,
    allow_small: bool = False,
    cache: bool = True,
    workdir: Path | None = None,
    progress: bool = False,
    timeout: float | None = None,
    dist: Distributed | None = None,
) -> EvaluationRecord:
    """Evaluate ``model`` (an id, or a Generator) under ``protocol``; return its record.

    Every metric of the protocol is computed from one sampling pass and one feature pass,
    sharded across the processes of ``torchrun`` (the numbers equal a single-process run's).
    A metric whose capability the model lacks is skipped with the reason; values computed
    from non-finite samples are marked invalid and the record is ``failed`` with the count.

    Args:
        model: a model id (loaded with ``weights=`` where given) or a loaded Generator.
        protocol: a shipped protocol's name, or a ``Protocol``.
        n: samples (or examples) instead of the protocol's count.
        seed: the sampling seed instead of the protocol's.
        overrides: sampling options over the protocol's for the model's family (a variant:
            see :func:`resolve_protocol`).
        device: where to sample and extract (default CUDA when available, else the CPU).
        weights: local weights for a model given by id.
        allow_small: allow ``n`` below the protocol's minimum (its own hash).
        cache: keep sample shards on disk (under ``workdir``), so an interrupted run resumes.
        workdir: where sample shards are cached (default ``$ZOO_CACHE_DIR/samples``).
        progress: show progress bars.
        timeout: seconds after which the run stops between shards (those drawn stay cached).
        dist: the processes to share the work with (default: those of ``torchrun``, or this
            one alone); a ``Distributed`` given is left open.

    Raises:
        UnknownProtocolError, TooFewSamplesError, UnknownMetricError: see resolve_protocol.
        ConfigError: a modality mismatch, or a bad option.
        EvaluationTimeoutError: the evaluation ran past ``timeout``.
        ZooError: whatever loading the model raises.
    """
    family = model_card(model).family if isinstance(model, str) else _family(model)
    resolved = resolve_protocol(protocol, n=n, seed=seed, overrides=overrides, family=family,
                                allow_small=allow_small)  # fmt: skip
    if isinstance(model, str):
        model = load(model, weights=weights)
    if model.modality != resolved.modality:
        raise ConfigError(
            f"protocol {resolved.name} is for {resolved.modality} models; "
            f"{model.name} samples {model.modality}"
        )
    owned = dist is None
    if owned:
        dist = Distributed.from_environment(str(device or default_device()))
    try:
        return _measure(model, resolved, dist, cache=cache, workdir=workdir,
                        progress=progress, timeout=timeout)  # fmt: skip
    finally:
        if owned:
            dist.close()


def _measure(
    model: Generator,
    protocol: Protocol,
    dist: Distributed,
    *,
    cache: bool,
    workdir: Path | None,
    progress: bool,
    timeout: float | None,
) -> EvaluationRecord:
    began = time.monotonic()
    deadline = None if timeout is None else began + timeout
    run = Evaluation(model, protocol, device=dist.device, workdir=workdir, cache=cache,
                     progress=progress, deadline=deadline, dist=dist)  # fmt: skip
    metrics: dict[str, float] = {}
    speed: dict[str, float] = {}
    skipped: dict[str, str] = {}
    lower: dict[str, bool] = {}
    for cls in dict.fromkeys(metric_evaluators(protocol).values()):  # each class once
        lower.update(cls.lower_is_better)
        missing = sorted(cls.requires - model.capabilities)
        if missing or model.modality not in cls.modalities:
            why = (f"{model.name} lacks the capability {', '.join(missing)}" if missing
                   else f"{cls.__name__} does not apply to {model.modality} samples")  # fmt: skip
            skipped.update(dict.fromkeys(cls.metrics, why))
            continue
        values = cls().compute(run)
        (speed if cls.speed else metrics).update(values)
    return _record(run, metrics, speed, skipped, lower, time.monotonic() - began)


def _family(model: Generator) -> str | None:
    return model.card.family if model.card is not None else None


# ----------------------------------------------------------------------------- records
def _record(
    run: Evaluation,
    metrics: dict[str, float],
    speed: dict[str, float],
    skipped: dict[str, str],
    lower: dict[str, bool],
    duration: float,
) -> EvaluationRecord:
    """The provenance record of one finished evaluation."""
    model, protocol = run.generator, run.protocol
    sampled = run.sampled
    error = None
    if sampled is not None and sampled.nonfinite:
        error = f"{sampled.nonfinite} of {sampled.n} samples were NaN or Inf"
    extractor_sha = run.extractor_sha256
    if protocol.extractor is not None and protocol.extractor_sha256 is None and extractor_sha:
        protocol = protocol.replace(extractor_sha256=extractor_sha)
    shown = {*metrics, *run.invalid, *skipped}
    return EvaluationRecord(
        **_common(model.name, model.card, protocol, run.device, run.dist.world_size, duration),
        weights_sha256=dict(model.weights_sha256),
        weights_hash=weights_hash(model),
        status="ok" if error is None else "failed",
        error=error,
        metrics=metrics,
        invalid=dict(run.invalid),
        skipped=skipped,
        lower_is_better={k: v for k, v in lower.items() if k in shown},
        speed=Speed(**speed, batch_size=protocol.batch_size if speed else None),
        extractor_sha256=extractor_sha,
    )


def failed_record(
    model_id: str, protocol: Protocol, error: BaseException, duration: float
) -> EvaluationRecord:
    """The record of an evaluation that raised (or timed out): the reason in one line."""
    try:
        card = model_card(model_id)
    except Exception:
        card = None
    return EvaluationRecord(
        **_common(model_id, card, protocol, None, 1, duration),
        status="failed",
        error=" ".join(f"{type(error).__name__}: {error}".split()),
    )


def _common(
    model_id: str,
    card: ModelCard | None,
    protocol: Protocol,
    device: torch.device | None,
    world_size: int,
    duration: float,
) -> dict[str, Any]:
    """The fields every record has: what was evaluated, under what, where and when."""
    return {
        "model": model_id,
        "family": card.family if card else None,
        "versions": versions(card.plugin if card else None),
        "protocol": protocol,
        "protocol_name": protocol.name,
        "protocol_hash": protocol.hash,
        "variant": protocol.variant,
        "n_samples": protocol.n_samples,
        "seed": protocol.seed,
        "environment": environment(device, world_size),
        "reported": _reported(card, protocol),
        "time": utc_now(),
        "duration_s": round(duration, 3),
    }


def _reported(card: ModelCard | None, protocol: Protocol) -> dict[str, float]:
    """The paper's figures from the card, where the card says they are under this protocol."""
    if card is None or not card.reported or card.reported.get("protocol") != protocol.name:
        return {}
    return {k: v for k, v in card.reported.items() if k != "protocol"}


def versions(plugin: str | None) -> dict[str, str]:
    """zoo-core's version and, for a model of a plugin, the plugin distribution's."""
    out = {"zoo-core": zoo_core.__version__}
    if plugin and plugin != "zoo-core":
        try:
            out[plugin] = version(plugin)
        except PackageNotFoundError:
            out[plugin] = "unknown"
    return out


def environment(device: torch.device | None, world_size: int) -> dict[str, Any]:
    """torch, Python, the device and its name, CUDA, and the number of processes."""
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

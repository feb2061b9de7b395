"""``zoo leaderboard``: run the evaluations that are missing, then render the page.

For every model matching the pattern and every protocol that applies to it (same
modality and dataset, and the capability its primary metric requires), an evaluation whose
record already exists with the same weights hash and protocol hash is reused; the others
run, each in its own guard: a model that raises, times out or yields non-finite samples gets
a failed record with the reason, and the others go on. Diffusion models are also run under
their protocol's sampler sweep (the FID-vs-NFE curves).
"""

from __future__ import annotations

import fnmatch
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from zoo_core.devices import default_device
from zoo_core.distributed import Distributed
from zoo_core.evaluation.harness import weights_hash
from zoo_core.evaluation.render import render_leaderboard
from zoo_core.evaluation.results import append_record, read_records
from zoo_core.evaluation.run import applies, evaluate, failed_record, resolve_protocol
from zoo_core.generator import Generator
from zoo_core.loading import load
from zoo_core.outputs import save_samples
from zoo_core.protocol import Protocol, get_protocol, list_protocols
from zoo_core.record import EvaluationRecord
from zoo_core.registry import list_models, model_card

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
GRID_SAMPLES = 64


@dataclass
class LeaderboardRun:
    """What a leaderboard run did: records appended, reused, and the pages written."""

    ran: list[EvaluationRecord] = field(default_factory=list)
    reused: list[EvaluationRecord] = field(default_factory=list)
    pages: tuple[Path, Path] | None = None


def _matches(record: EvaluationRecord, weights: str, protocol: Protocol) -> bool:
    if not record.ok or record.weights_hash != weights:
        return False
    resolved = protocol
    if protocol.extractor is not None and protocol.extractor_sha256 is None:
        if record.extractor_sha256 is None:
            return False
        resolved = protocol.replace(extractor_sha256=record.extractor_sha256)
    return record.protocol_hash == resolved.hash


def run_leaderboard(
    out_dir: Path,
    *,
    models: str | None = None,
    protocols: list[str] | None = None,
    device: str | None = None,
    force: bool = False,
    n: int | None = None,
    allow_small: bool = False,
    timeout: float | None = None,
    sweep: bool = True,
    progress: bool = False,
    dist: Distributed | None = None,
) -> LeaderboardRun:
    """Evaluate what is missing into ``out_dir/results.jsonl`` and render the pages.

    Args:
        dist: the processes to share each evaluation with (default: those of ``torchrun``,
            or this one alone); one given is left open. The main process writes the files.

    Raises:
        UnknownProtocolError: a protocol name that does not exist.
        ResultsFileError: the results file is corrupt or of a newer format.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = read_records(out_dir / RESULTS_FILE)  # a corrupt file fails before any work
    chosen = [get_protocol(name) for name in (protocols or list_protocols())]
    ids = [m for m in list_models() if models is None or fnmatch.fnmatch(m, models)]
    owned = dist is None
    if owned:
        dist = Distributed.from_environment(device or default_device())
    try:
        return _run(
            out_dir,
            existing,
            ids,
            chosen,
            dist,
            force=force,
            n=n,
            allow_small=allow_small,
            timeout=timeout,
            sweep=sweep,
            progress=progress,
        )
    finally:
        if owned:
            dist.close()


def _run(
    out_dir: Path,
    existing: list[EvaluationRecord],
    ids: list[str],
    chosen: list[Protocol],
    dist: Distributed,
    *,
    force: bool,
    n: int | None,
    allow_small: bool,
    timeout: float | None,
    sweep: bool,
    progress: bool,
) -> LeaderboardRun:
    results = out_dir / RESULTS_FILE
    main = dist.is_main
    summary = LeaderboardRun()
    for model_id in ids:
        card = model_card(model_id)
        wanted = [p for p in chosen if applies(card, p)]
        if not wanted:
            continue
        plans = []
        for protocol in wanted:
            base = resolve_protocol(protocol, n=n, allow_small=allow_small)
            plans.append(base)
            if sweep:
                plans.extend(base.variants(card.family))
        began = time.monotonic()
        try:
            model = load(model_id)
        except Exception as exc:
            log.warning("%s: cannot load: %s", model_id, exc)
            for protocol in plans:
                record = failed_record(model_id, protocol, exc, time.monotonic() - began)
                summary.ran.append(record)
                if main:
                    append_record(results, record)
            continue
        weights = weights_hash(model)
        for protocol in plans:
            reuse = [r for r in existing if r.model == model_id
                     and _matches(r, weights, protocol)]  # fmt: skip
            if reuse and not force:
                summary.reused.append(reuse[-1])
                continue
            began = time.monotonic()
            try:
                record = evaluate(model, protocol, progress=progress, timeout=timeout,
                                  dist=dist)  # fmt: skip
            except Exception as exc:
                log.warning("%s under %s failed: %s", model_id, protocol.title, exc)
                record = failed_record(model_id, protocol, exc, time.monotonic() - began)
            summary.ran.append(record)
            if main:
                append_record(results, record)
        if main:
            _write_grid(model, plans[0], out_dir)
    if main:
        summary.pages = render(out_dir)
    return summary


def _write_grid(model: Generator, protocol: Protocol, out_dir: Path) -> Path | None:
    """A grid (or scatter) of the model's first samples under the protocol's options."""
    if model.modality not in ("image", "points"):
        return None
    path = out_dir / "grids" / f"{model.name}.png"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    options = protocol.options_for(model.card.family if model.card else None)
    try:
        samples = model.sample(GRID_SAMPLES, seed=protocol.seed, **options)
        return save_samples(samples, path, modality=model.modality)
    except Exception as exc:
        log.warning("%s: no sample grid: %s", model.name, exc)
        return None


def latest(records: list[EvaluationRecord]) -> list[EvaluationRecord]:
    """The last record of each (model, protocol hash), in first-seen order."""
    last: dict[tuple[str, str], EvaluationRecord] = {}
    for record in records:
        last[(record.model, record.protocol_hash)] = record
    return list(last.values())


def render(out_dir: Path) -> tuple[Path, Path]:
    """Render ``leaderboard.md`` and ``index.html`` from ``out_dir/results.jsonl``."""
    out_dir = Path(out_dir)
    records = latest(read_records(out_dir / RESULTS_FILE))
    grids = {p.stem: p for p in sorted((out_dir / "grids").glob("*.png"))}
    return render_leaderboard(records, out_dir, grids=grids)

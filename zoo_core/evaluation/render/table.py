r"""The leaderboard's tables: result records checked, grouped by protocol hash, ranked, and
formatted once for both renderers.

One :class:`Table` per protocol hash: rows measured under different protocols are never
ranked together. Rows are ranked by the protocol's first metric; failed rows and rows whose
first metric is missing or invalid go to the bottom, unranked, with the reason. Records
are :class:`~zoo_core.record.EvaluationRecord`\ s (a mapping is checked as one); a metric's
direction is the record's, else the one its evaluator class declares.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from zoo_core.evaluation.facts import evaluator_of, metric_direction
from zoo_core.protocol import Protocol
from zoo_core.record import Environment, EvaluationRecord

logger = logging.getLogger(__name__)

MISSING = "—"
_SPREADS = ("_std", "_sem")  # spreads shown as "value ± spread" beside their metric


@dataclass(frozen=True)
class Column:
    """A table column; ``key`` names it in ``#sort=`` fragments and ``data-key``."""

    key: str
    label: str
    numeric: bool
    first_sort: str = "asc"  # the direction a first click on the header sorts in


@dataclass
class Cell:
    """A formatted value; ``sort_value`` None sorts last; ``invalid`` is why it is struck."""

    text: str
    sort_value: float | str | None
    invalid: str | None = None


@dataclass
class Row:
    """One record's row: its cells by column key, and its rank when it has one."""

    record: EvaluationRecord
    cells: dict[str, Cell]
    rank: int | None = None
    value: float | None = None  # the primary metric, when it is valid


@dataclass
class Table:
    """The records of one protocol hash, ranked by the protocol's first metric."""

    table_id: str
    protocol_name: str
    protocol_hash: str
    variant: str | None
    protocol: Protocol
    metrics: list[str]
    lower_is_better: dict[str, bool]
    columns: list[Column]
    rows: list[Row]
    provenance: str
    sampler: str | None = None
    latest: str = ""

    @property
    def primary(self) -> str | None:
        return self.metrics[0] if self.metrics else None

    @property
    def title(self) -> str:
        variant = f" · {self.variant}" if self.variant else ""
        return f"{self.protocol_name}{variant} · {self.protocol_hash[:12]}"

    def shown_columns(self) -> list[Column]:
        """The columns both renderers show: the note column only when a row has a note."""
        notes = any(row.cells["note"].sort_value for row in self.rows)
        return [c for c in self.columns if c.key != "note" or notes]


def build_tables(records: Iterable[EvaluationRecord | Mapping[str, Any]]) -> list[Table]:
    """Check, de-duplicate, group and rank ``records``; tables ordered for display.

    A later record of the same (model, weights hash, protocol hash) replaces an earlier one,
    as a re-run appended to ``results.jsonl`` supersedes the run before it.

    Raises:
        ResultsFileError: a record that does not validate (see ``EvaluationRecord.parse``),
            of another format among them.
    """
    latest: dict[tuple[str, str, str], EvaluationRecord] = {}
    for index, data in enumerate(records):
        record = EvaluationRecord.parse(data, f"result record {index + 1}")
        key = (record.model, str(record.weights_hash), record.protocol_hash)
        latest.pop(key, None)  # keep the order of the latest appearance
        latest[key] = record
    groups: dict[str, list[EvaluationRecord]] = {}
    for record in latest.values():
        groups.setdefault(record.protocol_hash, []).append(record)
    tables = [_table(group) for group in groups.values()]
    _assign_ids(tables)
    tables.sort(key=lambda table: table.latest, reverse=True)  # a protocol's newest hash first
    tables.sort(key=_display_order)  # stable: keeps that order among a name's base tables
    return tables


def _table(records: list[EvaluationRecord]) -> Table:
    first = records[0]
    metrics = _metric_names(first.protocol, records)
    lower = {m: _lower_is_better(m, records) for m in metrics}
    sampler = first.options_for_family().get("sampler")
    table = Table(
        table_id="",
        protocol_name=first.protocol_name,
        protocol_hash=first.protocol_hash,
        variant=first.variant,
        protocol=first.protocol,
        metrics=metrics,
        lower_is_better=lower,
        columns=[],
        rows=[],
        provenance=_provenance(first.protocol, first.protocol_hash, records),
        sampler=None if sampler is None else str(sampler),
        latest=max(r.time for r in records),
    )
    table.columns = _columns(table, records)
    table.rows = _ranked_rows(table, records)
    return table


def _metric_names(protocol: Protocol, records: list[EvaluationRecord]) -> list[str]:
    """The metric columns: the values the records hold, in the order the evaluators gave
    them (the protocol's primary metric first), spreads (``*_std``, ``*_sem``) folded into
    their metric. A protocol names evaluator groups (``kid``, ``modes``, ``speed``) whose
    values carry other names, so the records say what the columns are, in the protocol's
    order where it names them; when no record holds a value the protocol's names stand in
    (speed aside: it has its own columns)."""
    seen: dict[str, None] = {}
    for record in records:
        for name in record.metrics:
            if not name.endswith(_SPREADS):
                seen[name] = None
    named = [n for n in protocol.metrics if not _is_speed(n)]
    if not seen:
        return named
    # Records are written with sorted keys: the protocol's order first, then the others.
    return [n for n in named if n in seen] + sorted(n for n in seen if n not in named)


def _is_speed(name: str) -> bool:
    evaluator = evaluator_of(name)
    return evaluator is not None and evaluator.speed


def _columns(table: Table, records: list[EvaluationRecord]) -> list[Column]:
    columns = [Column("rank", "rank", True), Column("model", "model", False)]
    for metric in table.metrics:
        lower = table.lower_is_better[metric]
        first = "asc" if lower else "desc"
        key = _slug(metric)
        columns.append(Column(key, f"{metric} {'↓' if lower else '↑'}", True, first))
        if any(r.reported.get(metric) is not None for r in records):
            columns.append(Column(f"{key}-paper", f"{metric} (paper)", True, first))
    columns += [
        Column("samples_per_s", "samples/s", True, "desc"),
        Column("nfe", "NFE", True),
        Column("device", "device", False),
        Column("weights", "weights", False),
        Column("note", "note", False),
    ]
    return columns


def _ranked_rows(table: Table, records: list[EvaluationRecord]) -> list[Row]:
    rows = [_row(table, record) for record in records]
    primary, lower = table.primary, table.lower_is_better.get(table.primary or "", True)
    ranked = sorted(
        (row for row in rows if row.value is not None),
        key=lambda row: (row.value if lower else -row.value, row.record.model),
    )
    for position, row in enumerate(ranked):
        tied = position and ranked[position - 1].value == row.value
        row.rank = ranked[position - 1].rank if tied else position + 1
        row.cells["rank"] = Cell(str(row.rank), row.rank)
    failed = [row for row in rows if row.value is None]
    failed.sort(key=lambda row: (not row.record.ok, row.record.model))
    logger.debug(
        "table %s: %d ranked, %d unranked on %s", table.title, len(ranked), len(failed), primary
    )
    return ranked + failed


def _row(table: Table, record: EvaluationRecord) -> Row:
    metrics, invalid = record.metrics, record.invalid
    cells = {"rank": Cell(MISSING, None), "model": _text_cell(record.model)}
    notes = []
    for metric in table.metrics:
        cell, reason = _metric_cell(metric, metrics, invalid.get(metric))
        cells[_slug(metric)] = cell
        if reason:
            notes.append(f"{metric} invalid: {reason}")
        cells[f"{_slug(metric)}-paper"] = _number_cell(record.reported.get(metric))
    cells["samples_per_s"] = _number_cell(record.speed.samples_per_s)
    cells["nfe"] = _number_cell(record.speed.nfe)
    cells["device"] = _text_cell(_device(record.environment))
    cells["weights"] = _text_cell(_weights_hash(record)[:12])
    primary = table.primary
    value = metrics.get(primary) if primary else None
    if not record.ok:
        notes.insert(0, f"failed: {record.error or 'no error message recorded'}")
    elif primary and value is None and primary not in invalid:
        notes.insert(0, f"no valid {primary} value")
    valid = record.ok and value is not None and math.isfinite(value) and primary not in invalid
    note = "; ".join(notes)
    cells["note"] = Cell(note, note or None)  # blank, not a dash: nothing to say
    return Row(record, cells, value=value if valid else None)


def _metric_cell(
    metric: str, metrics: dict[str, float | None], reason: str | None
) -> tuple[Cell, str]:
    value = metrics.get(metric)
    if value is None:
        return Cell(MISSING, None), reason or ""
    if not math.isfinite(value):
        reason = reason or "the value is not finite"
    text = fmt(value)
    std = next((metrics[metric + end] for end in _SPREADS
                if metrics.get(metric + end) is not None), None)  # fmt: skip
    if std is not None:
        text += f" ± {fmt(std)}"
    if reason:
        return Cell(text, None, invalid=reason), reason  # struck, and sorted with the missing
    return Cell(text, value), ""


def _provenance(protocol: Protocol, protocol_hash: str, records: list[EvaluationRecord]) -> str:
    """One line: the protocol's hash and settings, the versions, the evaluation dates."""
    parts = [f"protocol sha256 {protocol_hash}"]
    settings = []
    dump = protocol.model_dump(mode="json", exclude={"name", "metrics", "description", "nfe_sweep"})
    dump = json.loads(json.dumps(dump, sort_keys=True))  # every level in key order, as filed
    for key, value in dump.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            for group, inner in value.items():  # sample_options, keyed by family
                pairs = ", ".join(f"{k}={fmt(v)}" for k, v in inner.items())
                settings.append(f"{key}.{group}: {pairs}")
        elif isinstance(value, dict):
            inner = ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
            settings.append(f"{key}: {inner}")
        else:
            settings.append(f"{key}={fmt(value)}")
    if settings:
        parts[0] += f" ({'; '.join(settings)})"
    versions: dict[str, set[str]] = {}
    environment: dict[str, set[str]] = {"torch": set(), "python": set()}
    for record in records:
        for package, version in record.versions.items():
            versions.setdefault(package, set()).add(version)
        for key in environment:
            if getattr(record.environment, key):
                environment[key].add(getattr(record.environment, key))
    if versions:
        parts.append(", ".join(f"{p} {'/'.join(sorted(v))}" for p, v in sorted(versions.items())))
    env_text = ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in environment.items() if v)
    if env_text:
        parts.append(env_text)
    times = sorted(r.time[:10] for r in records if r.time)
    if times:
        parts.append(
            f"evaluated {times[0]}" + (f" to {times[-1]}" if times[-1] != times[0] else "")
        )
    return " · ".join(parts)


def _assign_ids(tables: list[Table]) -> None:
    used: set[str] = set()
    for table in tables:
        base = "t-" + (re.sub(r"[^0-9A-Za-z]", "", table.protocol_hash)[:12] or "protocol")
        table_id, n = base, 1
        while table_id in used:
            n += 1
            table_id = f"{base}-{n}"
        used.add(table_id)
        table.table_id = table_id


def _display_order(table: Table) -> tuple[str, bool, str, float, str]:
    """By protocol name; the base tables, then the sweep by sampler and steps."""
    if table.variant is None:
        return (table.protocol_name, False, "", 0.0, "")
    steps = number(_sampling(table).get("steps")) or 0.0
    return (table.protocol_name, True, table.sampler or table.variant, steps, table.variant)


# Reading what a record holds.


def number(value: Any) -> float | None:
    """``value`` when it is an int or a float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _sampling(table: Table) -> dict[str, Any]:
    """The sampling options of the table's protocol for its models' family."""
    return table.rows[0].record.options_for_family() if table.rows else {}


def _lower_is_better(metric: str, records: list[EvaluationRecord]) -> bool:
    for record in records:
        if metric in record.lower_is_better:
            return record.lower_is_better[metric]
    declared = metric_direction(metric)  # records written before they carried it
    if declared is None:
        logger.warning("no direction recorded for metric %r; ranking it lower-is-better", metric)
        return True
    return declared


def _device(environment: Environment) -> str:
    device = environment.device or ""
    if environment.device_name:
        device = f"{device} ({environment.device_name})" if device else environment.device_name
    if environment.world_size and environment.world_size > 1:
        device += f" ×{environment.world_size:g}"
    return device


def _weights_hash(record: EvaluationRecord) -> str:
    if record.weights_hash is not None:
        return record.weights_hash
    files = record.weights_sha256
    return next(iter(files.values())) if len(files) == 1 else ""


# Formatting, shared by the Markdown and the HTML.


def fmt(value: Any) -> str:
    """Numbers to 4 significant digits (integers whole); anything else as text."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def _number_cell(value: float | None) -> Cell:
    return Cell(fmt(value), value) if value is not None else Cell(MISSING, None)


def _text_cell(text: str) -> Cell:
    return Cell(text or MISSING, text or None)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"

"""The leaderboard: result records rendered to GitHub Markdown and one self-contained HTML page.

Both files are built from the same :class:`Table` objects, so they hold the same numbers.
One table per protocol hash: rows measured under different protocols are never ranked
together. Rows are ranked by the protocol's first metric; failed rows and rows whose first
metric is missing or invalid go to the bottom, unranked, with the reason. Sampler-sweep
variants get their own tables after the base one, and an NFE chart per protocol name.

The HTML page needs nothing outside itself: CSS, SVG charts, the sorting script and the
sample grids (base64 data URIs) are inline, and its Content-Security-Policy forbids every
fetch and runs only the page's own script (by hash). Every record value is escaped.
``index.html#sort=<table-id>:<column-key>:<asc|desc>`` sorts a table on load.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import math
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo_core._io import atomic_write_bytes
from zoo_core.errors import ResultsFileError
from zoo_core.evaluation.results import FORMAT

__all__ = [
    "Table",
    "build_tables",
    "render_html",
    "render_leaderboard",
    "render_markdown",
]

logger = logging.getLogger(__name__)

_MISSING = "—"
# Directions of well-known metrics, for records written before ``lower_is_better`` existed.
_KNOWN_LOWER = {"fid": True, "kid": True, "fd_dinov2": True, "precision": False, "recall": False}
_KNOWN_LOWER |= {"inception_score": False, "density": False, "coverage": False}


# ---------------------------------------------------------------------------------------------
# Tables: the records grouped, ranked and formatted once for both renderers


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
    record: dict[str, Any]
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
    protocol: dict[str, Any]
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


_SPREADS = ("_std", "_sem")  # spreads shown as "value ± spread" beside their metric


def build_tables(records: Iterable[Mapping[str, Any]]) -> list[Table]:
    """Check, de-duplicate, group and rank ``records``; tables ordered for display.

    A later record of the same (model, weights hash, protocol hash) replaces an earlier one,
    as a re-run appended to ``results.jsonl`` supersedes the run before it.

    Raises:
        ResultsFileError: a record that is not an object, has no ``model`` or
            ``protocol_hash``, or whose ``format`` is not the one this zoo writes.
    """
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for index, record in enumerate(records):
        _check_record(index, record)
        key = (record["model"], str(record.get("weights_hash")), record["protocol_hash"])
        latest.pop(key, None)  # keep the order of the latest appearance
        latest[key] = dict(record)
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in latest.values():
        groups.setdefault(record["protocol_hash"], []).append(record)
    tables = [_table(group) for group in groups.values()]
    _assign_ids(tables)
    tables.sort(key=lambda table: table.latest, reverse=True)  # a protocol's newest hash first
    tables.sort(key=_display_order)  # stable: keeps that order among a name's base tables
    return tables


def _check_record(index: int, record: Any) -> None:
    where = f"result record {index + 1}"
    if not isinstance(record, Mapping):
        raise ResultsFileError(f"{where} is not a JSON object; the results file is corrupt")
    fmt = record.get("format")
    if isinstance(fmt, bool) or fmt != FORMAT:
        raise ResultsFileError(
            f"{where} has format {fmt!r}; this zoo reads format {FORMAT}: "
            "upgrade zoo-core or re-run the evaluation"
        )
    for name in ("model", "protocol_hash"):
        if not isinstance(record.get(name), str) or not record[name]:
            raise ResultsFileError(f"{where} has no {name!r}; the results file is corrupt")


def _table(records: list[dict[str, Any]]) -> Table:
    first = records[0]
    protocol = first.get("protocol") if isinstance(first.get("protocol"), dict) else {}
    metrics = _metric_names(protocol, records)
    lower = {m: _lower_is_better(m, records) for m in metrics}
    sampler = _sample_options(protocol, first.get("family")).get("sampler")
    table = Table(
        table_id="",
        protocol_name=str(first.get("protocol_name") or protocol.get("name") or "?"),
        protocol_hash=first["protocol_hash"],
        variant=None if first.get("variant") is None else str(first["variant"]),
        protocol=protocol,
        metrics=metrics,
        lower_is_better=lower,
        columns=[],
        rows=[],
        provenance=_provenance(protocol, first["protocol_hash"], records),
        sampler=None if sampler is None else str(sampler),
        latest=max(str(r.get("time") or "") for r in records),
    )
    table.columns = _columns(table, records)
    table.rows = _ranked_rows(table, records)
    return table


def _metric_names(protocol: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    """The metric columns: the values the records hold, in the order the evaluators gave
    them (the protocol's primary metric first), spreads (``*_std``, ``*_sem``) folded into
    their metric. A protocol names evaluator groups (``kid``, ``modes``, ``speed``) whose
    values carry other names, so the records say what the columns are, in the protocol's
    order where it names them; when no record holds a value the protocol's names stand in
    (speed aside: it has its own columns)."""
    seen: dict[str, None] = {}
    for record in records:
        for name in _mapping(record, "metrics"):
            if not name.endswith(_SPREADS):
                seen[name] = None
    names = protocol.get("metrics")
    named = [str(n) for n in names if n != "speed"] if isinstance(names, list) else []
    if not seen:
        return named
    # Records are written with sorted keys: the protocol's order first, then the others.
    return [n for n in named if n in seen] + sorted(n for n in seen if n not in named)


def _lower_is_better(metric: str, records: list[dict[str, Any]]) -> bool:
    for record in records:
        value = _mapping(record, "lower_is_better").get(metric)
        if isinstance(value, bool):
            return value
    if metric not in _KNOWN_LOWER:
        logger.warning("no direction recorded for metric %r; ranking it lower-is-better", metric)
    return _KNOWN_LOWER.get(metric, True)


def _columns(table: Table, records: list[dict[str, Any]]) -> list[Column]:
    columns = [Column("rank", "rank", True), Column("model", "model", False)]
    for metric in table.metrics:
        lower = table.lower_is_better[metric]
        first = "asc" if lower else "desc"
        key = _slug(metric)
        columns.append(Column(key, f"{metric} {'↓' if lower else '↑'}", True, first))
        if any(_number(_mapping(r, "reported").get(metric)) is not None for r in records):
            columns.append(Column(f"{key}-paper", f"{metric} (paper)", True, first))
    columns += [
        Column("samples_per_s", "samples/s", True, "desc"),
        Column("nfe", "NFE", True),
        Column("device", "device", False),
        Column("weights", "weights", False),
        Column("note", "note", False),
    ]
    return columns


def _ranked_rows(table: Table, records: list[dict[str, Any]]) -> list[Row]:
    rows = [_row(table, record) for record in records]
    primary, lower = table.primary, table.lower_is_better.get(table.primary or "", True)
    ranked = sorted(
        (row for row in rows if row.value is not None),
        key=lambda row: (row.value if lower else -row.value, row.record["model"]),
    )
    for position, row in enumerate(ranked):
        tied = position and ranked[position - 1].value == row.value
        row.rank = ranked[position - 1].rank if tied else position + 1
        row.cells["rank"] = Cell(str(row.rank), row.rank)
    failed = [row for row in rows if row.value is None]
    failed.sort(key=lambda row: (row.record.get("status", "ok") != "ok", row.record["model"]))
    logger.debug(
        "table %s: %d ranked, %d unranked on %s", table.title, len(ranked), len(failed), primary
    )
    return ranked + failed


def _row(table: Table, record: dict[str, Any]) -> Row:
    metrics, reported = _mapping(record, "metrics"), _mapping(record, "reported")
    invalid = {str(k): str(v) for k, v in _mapping(record, "invalid").items()}
    cells = {"rank": Cell(_MISSING, None), "model": _text_cell(record["model"])}
    notes = []
    for metric in table.metrics:
        cell, reason = _metric_cell(metric, metrics, invalid.get(metric))
        cells[_slug(metric)] = cell
        if reason:
            notes.append(f"{metric} invalid: {reason}")
        paper = _number(reported.get(metric))
        cells[f"{_slug(metric)}-paper"] = Cell(_fmt(paper), paper) if paper is not None else _none()
    speed = _mapping(record, "speed")
    per_s, nfe = _number(speed.get("samples_per_s")), _number(speed.get("nfe"))
    cells["samples_per_s"] = Cell(_fmt(per_s), per_s) if per_s is not None else _none()
    cells["nfe"] = Cell(_fmt(nfe), nfe) if nfe is not None else _none()
    cells["device"] = _text_cell(_device(_mapping(record, "environment")))
    cells["weights"] = _text_cell(_weights_hash(record)[:12])
    primary = table.primary
    value = _number(metrics.get(primary)) if primary else None
    ok = record.get("status", "ok") == "ok"  # older records have no status
    if not ok:
        notes.insert(0, f"failed: {record.get('error') or 'no error message recorded'}")
    elif primary and value is None and primary not in invalid:
        notes.insert(0, f"no valid {primary} value")
    valid = ok and value is not None and math.isfinite(value) and primary not in invalid
    note = "; ".join(notes)
    cells["note"] = Cell(note, note or None)  # blank, not a dash: nothing to say
    return Row(record, cells, value=value if valid else None)


def _metric_cell(metric: str, metrics: dict[str, Any], reason: str | None) -> tuple[Cell, str]:
    value = _number(metrics.get(metric))
    if value is None:
        return _none(), reason or ""
    if not math.isfinite(value):
        reason = reason or "the value is not finite"
    text = _fmt(value)
    std = next((_number(metrics.get(metric + end)) for end in _SPREADS
                if _number(metrics.get(metric + end)) is not None), None)  # fmt: skip
    if std is not None:
        text += f" ± {_fmt(std)}"
    if reason:
        return Cell(text, None, invalid=reason), reason  # struck, and sorted with the missing
    return Cell(text, value), ""


def _provenance(protocol: dict[str, Any], protocol_hash: str, records: list[dict]) -> str:
    parts = [f"protocol sha256 {protocol_hash}"]
    settings = []
    for key, value in protocol.items():
        if key in ("name", "metrics", "description"):
            continue
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            for group, inner in value.items():  # sample_options, keyed by family
                pairs = ", ".join(f"{k}={_fmt(v)}" for k, v in inner.items())
                settings.append(f"{key}.{group}: {pairs}")
        elif isinstance(value, dict):
            inner = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
            settings.append(f"{key}: {inner}")
        else:
            settings.append(f"{key}={_fmt(value)}")
    if settings:
        parts[0] += f" ({'; '.join(settings)})"
    versions: dict[str, set[str]] = {}
    environment: dict[str, set[str]] = {"torch": set(), "python": set()}
    for record in records:
        for package, version in _mapping(record, "versions").items():
            versions.setdefault(str(package), set()).add(str(version))
        env = _mapping(record, "environment")
        for key in environment:
            if env.get(key):
                environment[key].add(str(env[key]))
    if versions:
        parts.append(", ".join(f"{p} {'/'.join(sorted(v))}" for p, v in sorted(versions.items())))
    env_text = ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in environment.items() if v)
    if env_text:
        parts.append(env_text)
    times = sorted(str(r["time"])[:10] for r in records if r.get("time"))
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
    steps = _number(_mapping(table.protocol, "sample_options").get("steps")) or 0.0
    return (table.protocol_name, True, table.sampler or table.variant, steps, table.variant)


# ---------------------------------------------------------------------------------------------
# Small formatting helpers


def _mapping(record: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _fmt(value: Any) -> str:
    """Numbers to 4 significant digits (integers whole); anything else as text."""
    if value is None:
        return _MISSING
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def _none() -> Cell:
    return Cell(_MISSING, None)


def _text_cell(text: str) -> Cell:
    return Cell(text or _MISSING, text or None)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


def _device(environment: dict[str, Any]) -> str:
    device = str(environment.get("device") or "")
    if environment.get("device_name"):
        device = (
            f"{device} ({environment['device_name']})" if device else environment["device_name"]
        )
    world = _number(environment.get("world_size"))
    if world and world > 1:
        device += f" ×{world:g}"
    return device


def _weights_hash(record: dict[str, Any]) -> str:
    if isinstance(record.get("weights_hash"), str):
        return record["weights_hash"]
    files = _mapping(record, "weights_sha256")
    return str(next(iter(files.values()))) if len(files) == 1 else ""


# ---------------------------------------------------------------------------------------------
# Markdown


def render_markdown(tables: list[Table], grid_links: Mapping[str, str] | None = None) -> str:
    """GitHub Markdown of ``tables``; ``grid_links`` maps a model id to a relative PNG path."""
    lines = ["# zoo leaderboard", ""]
    if not tables:
        lines += ["No results yet: run `zoo eval` to add some.", ""]
    name = None
    for table in tables:
        if table.protocol_name != name:
            name = table.protocol_name
            lines += [f"## {_md(name)}", ""]
        lines += [f"### {_md(table.title)}", ""]
        columns = [c for c in table.columns if _shown(table, c)]
        lines.append("| " + " | ".join(_md(c.label) for c in columns) + " |")
        lines.append("|" + "|".join("---:" if c.numeric else "---" for c in columns) + "|")
        for row in table.rows:
            lines.append("| " + " | ".join(_md_cell(row.cells[c.key]) for c in columns) + " |")
        lines += ["", f"<sub>{_md(table.provenance)}</sub>", ""]
    if grid_links:
        lines += ["## Samples", ""]
        for model, link in grid_links.items():
            lines += [f"**{_md(model)}**", "", f"![samples of {_md(model)}]({link})", ""]
    if tables:
        lines += ["The charts (quality vs speed, quality vs NFE) are in `index.html`.", ""]
    return "\n".join(lines)


def _shown(table: Table, column: Column) -> bool:
    return column.key != "note" or any(row.cells["note"].sort_value for row in table.rows)


def _md(text: str) -> str:
    """Text that GitHub shows as itself: HTML escaped, Markdown punctuation backslashed."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    return re.sub(r"([\\`*_\[\]|~])", r"\\\1", text)


def _md_cell(cell: Cell) -> str:
    text = _md(cell.text)
    return f"~~{text}~~ ⚠" if cell.invalid else text


# ---------------------------------------------------------------------------------------------
# SVG charts


_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]
_PALETTE += ["#7f7f7f", "#bcbd22", "#17becf"]
_DASHES = ["", "6 3", "2 3", "8 3 2 3"]
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 720, 360, 70, 210, 28, 50


@dataclass
class _Scale:
    lo: float
    hi: float
    start: float  # pixel of lo
    end: float  # pixel of hi
    log: bool

    def __call__(self, value: float) -> float:
        f = math.log10 if self.log else float
        return self.start + (f(value) - f(self.lo)) / (f(self.hi) - f(self.lo)) * (
            self.end - self.start
        )

    def ticks(self) -> list[float]:
        if self.log:
            lo, hi = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            for mantissas in ((1, 2, 5), (1,)):
                ticks = [m * 10.0**k for k in range(lo, hi + 1) for m in mantissas]
                ticks = [t for t in ticks if self.lo <= t <= self.hi]
                if len(ticks) <= 8:
                    break
            return ticks if len(ticks) >= 2 else [self.lo, self.hi]
        raw = (self.hi - self.lo) / 5
        magnitude = 10.0 ** math.floor(math.log10(raw))
        step = min((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), default=raw)
        first = math.ceil(self.lo / step) * step
        return [first + i * step for i in range(int((self.hi - first) / step + 1e-9) + 1)]


def _domain(values: list[float], log: bool) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if log:
        return (lo / 1.25, hi * 1.25) if hi > lo else (lo / 2, hi * 2)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    return lo - pad, hi + pad


def _svg_chart(
    name: str,
    kind: str,
    title: str,
    series: list[tuple[dict[str, str], str, list[tuple[float, float]]]],
    x_label: str,
    y_label: str,
    colors: Mapping[str, str],
) -> str:
    """An SVG chart, log x; ``series`` are (attributes, legend label, points).

    A ``line`` chart draws one polyline per series (dashed as ``attributes["dash"]``) and a
    legend; a ``scatter`` one labelled point each. Other attributes become ``data-*``.
    """
    xs = [x for _, _, points in series for x, _ in points]
    ys = [y for _, _, points in series for _, y in points]
    right = _RIGHT if kind == "line" else 120  # a line chart's legend sits on the right
    sx = _Scale(*_domain(xs, True), _LEFT, _W - right, log=True)
    # a long legend makes the chart taller
    height = max(_H, _TOP + 18 * len(series) + _BOTTOM) if kind == "line" else _H
    sy = _Scale(*_domain(ys, False), height - _BOTTOM, _TOP, log=False)
    e = html.escape
    out = [
        '<figure class="plot">',
        f'<svg class="chart" data-chart="{e(name)}" viewBox="0 0 {_W} {height}" width="{_W}" '
        f'height="{height}" role="img" aria-label="{e(title)}">',
        f"<title>{e(title)}</title>",
        _axes(sx, sy, x_label, y_label),
    ]
    placed: list[tuple[float, float]] = []  # scatter labels so far, to keep them apart
    for index, (attrs, label, points) in enumerate(series):
        color = colors.get(attrs.get("model", ""), "#333")
        data = "".join(f' data-{k}="{e(v)}"' for k, v in attrs.items() if k != "dash")
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        out.append(f'<g class="series"{data}>')
        if kind == "line":
            dash = attrs.get("dash", "")
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(
                f'<polyline points="{coords}" fill="none" stroke="{color}" '
                f'stroke-width="2"{dash_attr}{data}/>'
            )
        for x, y in points:
            point = f"{label}: {_fmt(x)}, {_fmt(y)}"
            out.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{color}">'
                f"<title>{e(point)}</title></circle>"
            )
        if kind == "scatter":
            lx, ly = sx(points[0][0]) + 7, sy(points[0][1]) + 4
            while any(abs(ly - py) < 12 and abs(lx - px) < 90 for px, py in placed):
                ly += 12
            placed.append((lx, ly))
            out.append(f'<text x="{lx:.1f}" y="{ly:.1f}" class="point-label">{e(label)}</text>')
        out.append("</g>")
        if kind == "line":
            out.append(_legend_entry(index, label, color, attrs.get("dash", "")))
    out.append(f"</svg><figcaption>{e(title)}</figcaption></figure>")
    return "\n".join(out)


def _axes(sx: _Scale, sy: _Scale, x_label: str, y_label: str) -> str:
    e = html.escape
    bottom, left, right = sy.start, _LEFT, sx.end
    parts = [
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#444"/>',
        f'<line x1="{left}" y1="{_TOP}" x2="{left}" y2="{bottom}" stroke="#444"/>',
    ]
    for t in sx.ticks():
        x = sx(t)
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 5}" stroke="#444"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle" class="tick">'
            f"{_fmt(t)}</text>"
        )
    for t in sy.ticks():
        y = sy(t)
        parts.append(f'<line x1="{left - 5}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="#444"/>')
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_fmt(t)}</text>'
        )
    middle_x, middle_y = (left + right) / 2, (_TOP + bottom) / 2
    parts.append(
        f'<text x="{middle_x:.0f}" y="{bottom + 40}" text-anchor="middle" class="axis">'
        f"{e(x_label)}</text>"
    )
    parts.append(
        f'<text x="16" y="{middle_y:.0f}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 16 {middle_y:.0f})">{e(y_label)}</text>'
    )
    return "\n".join(parts)


def _legend_entry(index: int, label: str, color: str, dash: str) -> str:
    x, y = _W - _RIGHT + 16, _TOP + 8 + 18 * index
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<g class="legend"><line x1="{x}" y1="{y}" x2="{x + 24}" y2="{y}" stroke="{color}" '
        f'stroke-width="2"{dash_attr}/>'
        f'<text x="{x + 30}" y="{y + 4}">{html.escape(label)}</text></g>'
    )


def _colors(tables: list[Table]) -> dict[str, str]:
    """One colour per model id, the same in every chart."""
    models = sorted({row.record["model"] for t in tables for row in t.rows})
    return {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(models)}


def _by_name(tables: list[Table]) -> dict[str, list[Table]]:
    groups: dict[str, list[Table]] = {}
    for table in tables:
        groups.setdefault(table.protocol_name, []).append(table)
    return groups


def _scatter(table: Table, colors: Mapping[str, str]) -> str | None:
    series = []
    for row in table.rows:
        per_s = _number(_mapping(row.record, "speed").get("samples_per_s"))
        if row.value is not None and per_s is not None and per_s > 0:
            model = row.record["model"]
            series.append(({"model": model}, model, [(per_s, row.value)]))
    if len(series) < 2:  # one model alone makes no comparison
        return None
    metric = table.primary or ""
    arrow = "↓" if table.lower_is_better.get(metric, True) else "↑"
    title = f"{metric} vs sampling speed — {table.title}"
    return _svg_chart(
        "scatter", "scatter", title, series, "samples/s (log)", f"{metric} {arrow}", colors
    )


def _sample_options(protocol: dict[str, Any], family: Any) -> dict[str, Any]:
    """The sampling options the protocol gave a model of ``family`` (protocols key them by
    family: ``{"diffusion": {"sampler": "ddim", "steps": 50}}``)."""
    options = protocol.get("sample_options")
    if not isinstance(options, dict):
        return {}
    chosen = options.get(family) if isinstance(family, str) else None
    return chosen if isinstance(chosen, dict) else {}


def _nfe_chart(group: list[Table], colors: Mapping[str, str]) -> str | None:
    """One curve per (model, sampler) over the tables of one protocol name, x = NFE."""
    metric = next((t.primary for t in group if t.variant is None), group[0].primary)
    curves: dict[tuple[str, str], dict[float, float]] = {}
    for table in group:
        if table.primary != metric or not table.sampler:
            continue
        for row in table.rows:
            options = _sample_options(table.protocol, row.record.get("family"))
            steps = _number(options.get("steps"))
            # One curve per sampler and setting other than the step count (e.g. precision).
            others = [
                f"{k}={v}" for k, v in sorted(options.items()) if k not in ("sampler", "steps")
            ]
            curve = ", ".join([table.sampler, *others])
            nfe = _number(_mapping(row.record, "speed").get("nfe")) or steps
            if row.value is not None and nfe and nfe > 0:
                points = curves.setdefault((row.record["model"], curve), {})
                points.setdefault(nfe, row.value)  # a repeated NFE keeps the first table's
    per_model: dict[str, int] = {}
    for (model, _), points in curves.items():
        per_model[model] = per_model.get(model, 0) + len(points)
    # Only models measured at several settings: a GAN in the same protocol is one point.
    curves = {key: points for key, points in curves.items() if per_model[key[0]] >= 2}
    if not metric or not curves:
        return None
    samplers = sorted({sampler for _, sampler in curves})
    series = []
    for (model, sampler), points in sorted(curves.items()):
        dash = _DASHES[samplers.index(sampler) % len(_DASHES)]
        attrs = {"model": model, "sampler": sampler, "dash": dash}
        series.append((attrs, f"{model} · {sampler}", sorted(points.items())))
    arrow = "↓" if group[0].lower_is_better.get(metric, True) else "↑"
    title = f"{metric} vs NFE — {group[0].protocol_name}"
    return _svg_chart("nfe", "line", title, series, "NFE (log)", f"{metric} {arrow}", colors)


# ---------------------------------------------------------------------------------------------
# HTML


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}h3{font-size:1.05em}
code{font-size:.92em}.provenance{color:#666;font-size:.85em;overflow-wrap:anywhere}
table.board{border-collapse:collapse;margin:.5em 0;font-variant-numeric:tabular-nums}
table.board th,table.board td{border-bottom:1px solid #e4e4e4;padding:.3em .6em;text-align:left}
table.board td.num,table.board th.num{text-align:right;white-space:nowrap}
.scroll{overflow-x:auto}details.sweep{margin:1em 0}
details.sweep>summary{cursor:pointer;font-weight:600}
table.board th{cursor:pointer;user-select:none;background:#f6f6f6;white-space:nowrap}
th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
tr.unranked td{color:#777}td.invalid s{color:#b00}td.note{max-width:28em}
svg.chart{display:block;margin:1em 0;max-width:100%;height:auto}
svg.chart text{font:11px system-ui,sans-serif;fill:#333}svg.chart text.axis{font-size:12px}
.grids{display:flex;flex-wrap:wrap;gap:1.5em}figure{margin:1em 0}figcaption{color:#444}
figure.grid img{image-rendering:pixelated;width:320px;height:auto;border:1px solid #ddd}
"""

_JS = """
(function () {
  "use strict";
  function value(row, index, numeric) {
    var cell = row.cells[index];
    if (!cell || !cell.hasAttribute("data-value")) return null;
    var raw = cell.getAttribute("data-value");
    if (!numeric) return raw;
    var x = parseFloat(raw);
    return isFinite(x) ? x : null;
  }
  function sortTable(table, key, dir) {
    var heads = table.tHead.rows[0].cells, index = -1;
    for (var i = 0; i < heads.length; i++) {
      if (heads[i].getAttribute("data-key") === key) index = i;
    }
    if (index < 0) return false;
    var numeric = heads[index].getAttribute("data-type") === "num";
    var sign = dir === "desc" ? -1 : 1, body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row) {
      return {row: row, v: value(row, index, numeric), order: +row.getAttribute("data-order")};
    });
    rows.sort(function (a, b) {
      if (a.v === null || b.v === null) {
        return a.v === b.v ? a.order - b.order : (a.v === null ? 1 : -1);
      }
      var c = numeric ? a.v - b.v : a.v.localeCompare(b.v, undefined, {numeric: true});
      return c !== 0 ? sign * c : a.order - b.order;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
    for (var j = 0; j < heads.length; j++) {
      var state = j !== index ? "none" : (dir === "desc" ? "descending" : "ascending");
      heads[j].setAttribute("aria-sort", state);
    }
    table.setAttribute("data-sort", key + ":" + dir);
    return true;
  }
  function fromFragment() {
    var parts = location.hash.replace(/^#/, "").split("&");
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf("sort=") !== 0) continue;
      var spec = decodeURIComponent(parts[i].slice(5)).split(":");
      var table = document.getElementById(spec[0]);
      if (table && table.tHead && spec.length >= 2) {
        sortTable(table, spec[1], spec[2] === "desc" ? "desc" : "asc");
      }
    }
  }
  function onClick(event) {
    var th = event.target.closest("th[data-key]");
    if (!th) return;
    var table = th.closest("table"), key = th.getAttribute("data-key");
    var current = (table.getAttribute("data-sort") || "").split(":");
    var dir = th.getAttribute("data-first") || "asc";
    if (current[0] === key) dir = current[1] === "desc" ? "asc" : "desc";
    sortTable(table, key, dir);
    try {
      var spec = table.id + ":" + key + ":" + dir;
      history.replaceState(null, "", "#sort=" + encodeURIComponent(spec));
    } catch (e) { /* a file: URL may refuse; the sort is done anyway */ }
  }
  var tables = document.querySelectorAll("table.board");
  function onKey(event) {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); onClick(event); }
  }
  for (var k = 0; k < tables.length; k++) {
    tables[k].tHead.addEventListener("click", onClick);
    tables[k].tHead.addEventListener("keydown", onKey);
  }
  window.addEventListener("hashchange", fromFragment);
  fromFragment();
})();
"""


def render_html(
    tables: list[Table], records: list[dict[str, Any]], grids: Mapping[str, bytes]
) -> str:
    """The self-contained page of ``tables``, with ``records`` embedded as JSON (in
    ``<script type="application/json" id="zoo-records">``); ``grids`` maps a model id to the
    bytes of its PNG."""
    e = html.escape
    script_hash = base64.b64encode(hashlib.sha256(_JS.encode()).digest()).decode()
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{script_hash}'; base-uri 'none'; form-action 'none'"
    )
    n_records = sum(len(t.rows) for t in tables)
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>zoo leaderboard</title><style>{_CSS}</style></head><body>",
        "<h1>zoo leaderboard</h1>",
        f"<p>{n_records} results in {len(tables)} tables, one per protocol hash; click a "
        "column header to sort. Struck values are invalid and never ranked.</p>",
    ]
    if not tables:
        out.append("<p>No results yet: run <code>zoo eval</code> to add some.</p>")
    out.append(_nav(tables))
    colors = _colors(tables)
    for index, (name, group) in enumerate(_by_name(tables).items()):
        out.append(f'<h2 id="p-{index}">{e(name)}</h2>')
        out.extend(_html_table(t, colors) for t in group if t.variant is None)
        sweep = [t for t in group if t.variant is not None]
        if sweep:
            out.append(
                f'<details class="sweep"><summary>Sampler sweep: {len(sweep)} settings, '
                "one table each</summary>"
            )
            out.extend(_html_table(t, colors) for t in sweep)
            out.append("</details>")
        chart = _nfe_chart(group, colors)
        if chart:
            out.append(chart)
    if grids:
        out.append('<section id="samples"><h2>Samples</h2><div class="grids">')
        for model, png in grids.items():
            uri = "data:image/png;base64," + base64.b64encode(png).decode()
            out.append(
                f'<figure class="grid" data-model="{e(model)}">'
                f'<img src="{uri}" alt="samples of {e(model)}">'
                f"<figcaption>{e(model)}</figcaption></figure>"
            )
        out.append("</div></section>")
    records_json = _records_json(records)
    out.append(f'<script type="application/json" id="zoo-records">{records_json}</script>')
    out.append(f"<script>{_JS}</script>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _nav(tables: list[Table]) -> str:
    items = []
    for table in tables:
        items.append(f'<li><a href="#{table.table_id}-h">{html.escape(table.title)}</a></li>')
    return f"<nav><ul>{''.join(items)}</ul></nav>" if items else ""


def _html_table(table: Table, colors: Mapping[str, str]) -> str:
    """The table, its provenance and (for a base protocol) its quality-vs-speed scatter."""
    e = html.escape
    columns = [c for c in table.columns if _shown(table, c)]
    out = [
        f'<section class="protocol" data-protocol-hash="{e(table.protocol_hash)}">',
        f'<h3 id="{table.table_id}-h">{e(table.title)}</h3>',
        f'<div class="scroll"><table class="board" id="{table.table_id}"><thead><tr>',
    ]
    for c in columns:
        kind = "num" if c.numeric else "text"
        out.append(
            f'<th data-key="{e(c.key)}" data-type="{kind}" data-first="{c.first_sort}" '
            f'class="{kind}" aria-sort="none" tabindex="0">{e(c.label)}</th>'
        )
    out.append("</tr></thead><tbody>")
    for order, row in enumerate(table.rows):
        cls = "ranked" if row.rank is not None else "unranked"
        out.append(f'<tr class="{cls}" data-order="{order}" data-model="{e(row.record["model"])}">')
        out.extend(_html_cell(c, row.cells[c.key]) for c in columns)
        out.append("</tr>")
    out.append("</tbody></table></div>")
    out.append(f'<p class="provenance">{e(table.provenance)}</p>')
    chart = _scatter(table, colors) if table.variant is None else None
    if chart:
        out.append(chart)
    out.append("</section>")
    return "\n".join(out)


def _html_cell(column: Column, cell: Cell) -> str:
    e = html.escape
    classes = ["num" if column.numeric else "text", column.key if column.key == "note" else ""]
    attrs = ""
    if cell.sort_value is not None:
        value = repr(float(cell.sort_value)) if column.numeric else str(cell.sort_value)
        attrs = f' data-value="{e(value)}"'
    text = e(cell.text)
    if cell.invalid:
        classes.append("invalid")
        attrs += f' title="invalid: {e(cell.invalid)}"'
        text = f"<s>{text}</s>"
    return f'<td class="{" ".join(c for c in classes if c)}"{attrs}>{text}</td>'


def _records_json(records: list[dict[str, Any]]) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>`` or ``&`` can end the element early."""
    text = json.dumps(_finite(records), ensure_ascii=False, allow_nan=False, default=str)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN; the page shows such values struck anyway
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# The entry point


def render_leaderboard(
    records: list[dict[str, Any]], out_dir: Path, *, grids: dict[str, Path] | None = None
) -> tuple[Path, Path]:
    """Write ``out_dir/leaderboard.md`` and ``out_dir/index.html`` (each atomically).

    Args:
        records: result records (``results.jsonl``, one dict a line), in the order appended.
        out_dir: the directory to write into; created if missing.
        grids: model id -> PNG of its samples. The page embeds each as a data URI; the
            Markdown links to it, copied into ``out_dir/grids/`` when it lies outside
            ``out_dir``. A grid whose file is missing is left out with a warning.

    Returns:
        The paths of the Markdown file and of the HTML page.

    Raises:
        ResultsFileError: a record of another format, or without a model or protocol hash.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = build_tables(records)
    pngs: dict[str, bytes] = {}
    for model, path in (grids or {}).items():
        try:
            pngs[model] = Path(path).read_bytes()
        except OSError as exc:
            logger.warning("leaving out the sample grid of %s: %s", model, exc)
    links = _grid_links(pngs, {m: Path(p) for m, p in (grids or {}).items()}, out_dir)
    markdown = render_markdown(tables, links)
    shown = [row.record for table in tables for row in table.rows]
    page = render_html(tables, shown, pngs)
    md_path = atomic_write_bytes(out_dir / "leaderboard.md", markdown.encode())
    html_path = atomic_write_bytes(out_dir / "index.html", page.encode())
    logger.info("wrote %s and %s (%d tables)", md_path, html_path, len(tables))
    return md_path, html_path


def _grid_links(pngs: dict[str, bytes], paths: dict[str, Path], out_dir: Path) -> dict[str, str]:
    """Model id -> URL of its PNG relative to ``out_dir``, copying those outside it."""
    links, used = {}, set()
    root = out_dir.resolve()
    for model, data in pngs.items():
        path = paths[model].resolve()
        if path.is_relative_to(root):
            relative = path.relative_to(root)
        else:
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("._-") or "model"
            if stem in used:
                stem += "-" + hashlib.sha256(model.encode()).hexdigest()[:8]
            used.add(stem)
            (out_dir / "grids").mkdir(exist_ok=True)
            relative = Path("grids", f"{stem}.png")
            atomic_write_bytes(out_dir / relative, data)
        links[model] = urllib.parse.quote(relative.as_posix())
    return links

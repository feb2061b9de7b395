"""The leaderboard's charts, drawn from its tables: quality against sampling speed for each
base table, quality against NFE for each protocol name with a sampler sweep.

It picks the points out of the tables; :mod:`.svg` draws them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from zoo_core.evaluation.render.svg import DASHES, Series, chart, palette
from zoo_core.evaluation.render.table import Table, fmt, number


def model_colors(tables: list[Table]) -> dict[str, str]:
    """One colour per model id, the same in every chart."""
    return palette(sorted({row.record.model for t in tables for row in t.rows}))


def speed_scatter(table: Table, colors: Mapping[str, str]) -> str | None:
    """The table's primary metric against samples/s, one point per ranked model; None when
    fewer than two models have both."""
    series = []
    for row in table.rows:
        per_s = number(row.record.speed.samples_per_s)
        if row.value is not None and _positive(per_s):  # a log axis
            model = row.record.model
            color = colors.get(model, "#333")
            series.append(Series(model, [(per_s, row.value)], color, data={"model": model}))
    if len(series) < 2:  # one model alone makes no comparison
        return None
    metric = table.primary or ""
    arrow = "↓" if table.lower_is_better.get(metric, True) else "↑"
    title = f"{metric} vs sampling speed — {table.title}"
    return chart(
        "scatter", "scatter", title, series, "samples/s (log)", f"{metric} {arrow}", fmt=fmt
    )


def nfe_chart(group: list[Table], colors: Mapping[str, str]) -> str | None:
    """One curve per (model, sampler) over the tables of one protocol name, x = NFE."""
    metric = next((t.primary for t in group if t.variant is None), group[0].primary)
    curves: dict[tuple[str, str], dict[float, float]] = {}
    for table in group:
        if table.primary != metric or not table.sampler:
            continue
        for row in table.rows:
            options = row.record.options_for_family()
            steps = number(options.get("steps"))
            # One curve per sampler and setting other than the step count (e.g. precision).
            others = [
                f"{k}={v}" for k, v in sorted(options.items()) if k not in ("sampler", "steps")
            ]
            curve = ", ".join([table.sampler, *others])
            nfe = number(row.record.speed.nfe) or steps
            if row.value is not None and _positive(nfe):  # a log axis
                points = curves.setdefault((row.record.model, curve), {})
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
        dash = DASHES[samplers.index(sampler) % len(DASHES)]
        data = {"model": model, "sampler": sampler}
        label = f"{model} · {sampler}"
        color = colors.get(model, "#333")
        series.append(Series(label, sorted(points.items()), color, dash, data))
    arrow = "↓" if group[0].lower_is_better.get(metric, True) else "↑"
    title = f"{metric} vs NFE — {group[0].protocol_name}"
    return chart("nfe", "line", title, series, "NFE (log)", f"{metric} {arrow}", fmt=fmt)


def _positive(value: float | None) -> bool:
    """Whether ``value`` can stand on a log axis: a finite number above zero."""
    return value is not None and 0 < value < math.inf

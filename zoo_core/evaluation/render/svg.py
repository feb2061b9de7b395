"""Inline SVG charts for the HTML page: log-x axes with ticks, series of points, polylines
with dashes, point labels and a legend.

It knows nothing of records or tables: the caller gives the series (points, label, colour,
dash, ``data-*`` attributes) and how to write a number. Every text it places is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]
PALETTE += ["#7f7f7f", "#bcbd22", "#17becf"]
DASHES = ["", "6 3", "2 3", "8 3 2 3"]  # stroke-dasharray values, solid first
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 720, 360, 70, 210, 28, 50


@dataclass
class Series:
    """One series of a chart: a point (scatter) or a curve (line) and its legend label.

    ``data`` becomes ``data-*`` attributes of its ``<g>`` (and of its polyline); ``dash``
    a stroke-dasharray ("" draws solid).
    """

    label: str
    points: list[tuple[float, float]]
    color: str = "#333"
    dash: str = ""
    data: dict[str, str] = field(default_factory=dict)


def palette(names: Iterable[str]) -> dict[str, str]:
    """One colour per name, in the order given, cycling through :data:`PALETTE`."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def chart(
    name: str,
    kind: Literal["line", "scatter"],
    title: str,
    series: list[Series],
    x_label: str,
    y_label: str,
    *,
    fmt: Callable[[float], str],
) -> str:
    """A ``<figure>`` holding an SVG chart of ``series``, log x, linear y.

    Args:
        name: the chart's ``data-chart`` attribute.
        kind: ``line`` draws one polyline per series, dashed as its ``dash``, and a legend
            on the right; ``scatter`` one labelled point per series.
        title: the chart's title and caption.
        series: what to draw, in drawing order.
        x_label, y_label: the axis labels.
        fmt: writes a number (tick labels, point tooltips).

    Returns:
        The figure's markup.
    """
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
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
        _axes(sx, sy, x_label, y_label, fmt),
    ]
    placed: list[tuple[float, float]] = []  # scatter labels so far, to keep them apart
    for index, s in enumerate(series):
        data = "".join(f' data-{k}="{e(v)}"' for k, v in s.data.items())
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s.points)
        out.append(f'<g class="series"{data}>')
        if kind == "line":
            dash_attr = f' stroke-dasharray="{s.dash}"' if s.dash else ""
            out.append(
                f'<polyline points="{coords}" fill="none" stroke="{s.color}" '
                f'stroke-width="2"{dash_attr}{data}/>'
            )
        for x, y in s.points:
            point = f"{s.label}: {fmt(x)}, {fmt(y)}"
            out.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{s.color}">'
                f"<title>{e(point)}</title></circle>"
            )
        if kind == "scatter":
            lx, ly = sx(s.points[0][0]) + 7, sy(s.points[0][1]) + 4
            while any(abs(ly - py) < 12 and abs(lx - px) < 90 for px, py in placed):
                ly += 12
            placed.append((lx, ly))
            out.append(f'<text x="{lx:.1f}" y="{ly:.1f}" class="point-label">{e(s.label)}</text>')
        out.append("</g>")
        if kind == "line":
            out.append(_legend_entry(index, s.label, s.color, s.dash))
    out.append(f"</svg><figcaption>{e(title)}</figcaption></figure>")
    return "\n".join(out)


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


def _axes(sx: _Scale, sy: _Scale, x_label: str, y_label: str, fmt: Callable[[float], str]) -> str:
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
            f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle" class="tick">{fmt(t)}</text>'
        )
    for t in sy.ticks():
        y = sy(t)
        parts.append(f'<line x1="{left - 5}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="#444"/>')
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" class="tick">{fmt(t)}</text>'
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

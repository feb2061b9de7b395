"""The leaderboard as one self-contained HTML page: the tables (sortable by clicking a
header, or by ``index.html#sort=<table-id>:<column-key>:<asc|desc>``), their charts, the
sample grids and the records themselves as JSON.

The page needs nothing outside itself: the style sheet and the sorting script (the package's
``leaderboard.css`` and ``leaderboard.js``), the SVG charts and the grids (base64 data URIs)
are inline, and its Content-Security-Policy forbids every fetch and runs only the script it
inlines (by hash). Every record value is escaped.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
from collections.abc import Mapping
from importlib import resources

from zoo_core.evaluation.render.charts import model_colors, nfe_chart, speed_scatter
from zoo_core.evaluation.render.table import Cell, Column, Table
from zoo_core.record import EvaluationRecord


def render_html(
    tables: list[Table], records: list[EvaluationRecord], grids: Mapping[str, bytes]
) -> str:
    """The self-contained page of ``tables``, with ``records`` embedded as JSON (in
    ``<script type="application/json" id="zoo-records">``); ``grids`` maps a model id to the
    bytes of its PNG."""
    e = html.escape
    style, script = _asset("leaderboard.css"), _asset("leaderboard.js")
    script_hash = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
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
        f"<title>zoo leaderboard</title><style>{style}</style></head><body>",
        "<h1>zoo leaderboard</h1>",
        f"<p>{n_records} results in {len(tables)} tables, one per protocol hash; click a "
        "column header to sort. Struck values are invalid and never ranked.</p>",
    ]
    if not tables:
        out.append("<p>No results yet: run <code>zoo eval</code> to add some.</p>")
    out.append(_nav(tables))
    colors = model_colors(tables)
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
        chart = nfe_chart(group, colors)
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
    out.append(f"<script>{script}</script>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


@functools.cache
def _asset(name: str) -> str:
    """A file of this package as the page inlines it: on lines of its own after the tag."""
    return "\n" + resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _by_name(tables: list[Table]) -> dict[str, list[Table]]:
    groups: dict[str, list[Table]] = {}
    for table in tables:
        groups.setdefault(table.protocol_name, []).append(table)
    return groups


def _nav(tables: list[Table]) -> str:
    items = []
    for table in tables:
        items.append(f'<li><a href="#{table.table_id}-h">{html.escape(table.title)}</a></li>')
    return f"<nav><ul>{''.join(items)}</ul></nav>" if items else ""


def _html_table(table: Table, colors: Mapping[str, str]) -> str:
    """The table, its provenance and (for a base protocol) its quality-vs-speed scatter."""
    e = html.escape
    columns = table.shown_columns()
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
        out.append(f'<tr class="{cls}" data-order="{order}" data-model="{e(row.record.model)}">')
        out.extend(_html_cell(c, row.cells[c.key]) for c in columns)
        out.append("</tr>")
    out.append("</tbody></table></div>")
    out.append(f'<p class="provenance">{e(table.provenance)}</p>')
    chart = speed_scatter(table, colors) if table.variant is None else None
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


def _records_json(records: list[EvaluationRecord]) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>`` or ``&`` can end the element early."""
    data = [record.to_json() for record in records]
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, sort_keys=True)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text

"""The leaderboard as GitHub Markdown: one table per protocol hash, under its protocol's
name, with its provenance line, then links to the sample grids. Every record value is
escaped so that GitHub shows it as text."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from zoo_core.evaluation.render.table import Cell, Table


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
        columns = table.shown_columns()
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


def _md(text: str) -> str:
    """Text that GitHub shows as itself: HTML escaped, Markdown punctuation backslashed."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    return re.sub(r"([\\`*_\[\]|~])", r"\\\1", text)


def _md_cell(cell: Cell) -> str:
    text = _md(cell.text)
    return f"~~{text}~~ ⚠" if cell.invalid else text

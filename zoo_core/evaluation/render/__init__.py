"""The leaderboard: result records rendered to GitHub Markdown and one self-contained HTML page.

Both files are built from the same :class:`Table` objects, so they hold the same numbers:
:mod:`.table` checks, groups and ranks the records (one table per protocol hash), then
:mod:`.markdown` and :mod:`.html` write them, the page with the charts of :mod:`.charts`
(drawn by :mod:`.svg`). Sampler-sweep variants get their own tables after the base one, and
an NFE chart per protocol name. This module writes the two files.
"""

from __future__ import annotations

import hashlib
import logging
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zoo_core._io import atomic_write_bytes
from zoo_core.evaluation.render.html import render_html
from zoo_core.evaluation.render.markdown import render_markdown
from zoo_core.evaluation.render.table import Table, build_tables
from zoo_core.record import EvaluationRecord

__all__ = [
    "Table",
    "build_tables",
    "render_html",
    "render_leaderboard",
    "render_markdown",
]

logger = logging.getLogger(__name__)


def render_leaderboard(
    records: Sequence[EvaluationRecord | Mapping[str, Any]],
    out_dir: Path,
    *,
    grids: dict[str, Path] | None = None,
) -> tuple[Path, Path]:
    """Write ``out_dir/leaderboard.md`` and ``out_dir/index.html`` (each atomically).

    Args:
        records: result records (those of a ``results.jsonl``, in the order appended), or
            their JSON, checked as records.
        out_dir: the directory to write into; created if missing.
        grids: model id -> PNG of its samples. The page embeds each as a data URI; the
            Markdown links to it, copied into ``out_dir/grids/`` when it lies outside
            ``out_dir``. A grid whose file is missing is left out with a warning.

    Returns:
        The paths of the Markdown file and of the HTML page.

    Raises:
        ResultsFileError: a record that does not validate, or of another format.
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

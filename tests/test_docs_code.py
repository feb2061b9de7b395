"""The Python in the documentation runs: every ```python block of docs/*.md and README.md.

The blocks of a page run in order, in one fresh namespace per page (a later block uses what
an earlier one defined), in a temporary working directory with its own zoo and Hugging Face
caches (nothing cached: a Hub card cannot load), on one torch thread, with every network
connection refused. A block that cannot run there says so in the comment line right before
it, with the reason:

    <!-- no-run: the weights of ddpm-cifar10 come from the Hub -->

The marked blocks are counted and must stay a small minority; every other block must run.
"""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
DOCS = ROOT / MKDOCS.get("docs_dir", "docs")
PAGES = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
_NO_RUN = re.compile(r"^\s*<!--\s*no-run:(?P<reason>.*?)-->\s*$")
_PYTHON = {"python", "py"}


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    code: str
    no_run: str | None  # the reason, for a block marked no-run


def code_blocks(path: Path) -> tuple[list[Block], list[int]]:
    """The ``python`` blocks of a page, and the lines of no-run markers that mark no block."""
    lines = path.read_text(encoding="utf-8").splitlines()
    page = path.relative_to(ROOT).as_posix()
    found, stray, marker, i = [], [], None, 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            no_run = _NO_RUN.match(lines[i])
            if no_run is not None:
                if marker is not None:
                    stray.append(marker[0])
                marker = (i + 1, no_run.group("reason").strip())
            elif lines[i].strip() and marker is not None:
                stray.append(marker[0])  # prose between the marker and the block
                marker = None
            i += 1
            continue
        fence, indent = opening.group("fence"), len(opening.group("indent"))
        end = i + 1
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        language = (opening.group("info").split() or [""])[0].lower()
        if language in _PYTHON:
            body = "\n".join(line[indent:] for line in lines[i + 1 : end])
            reason = marker[1] if marker is not None else None
            found.append(Block(page, i + 1, textwrap.dedent(body), reason))
        elif marker is not None:
            stray.append(marker[0])  # a marker before a block that is not Python
        marker = None
        i = end + 1
    if marker is not None:
        stray.append(marker[0])
    return found, stray


BLOCKS = {path.relative_to(ROOT).as_posix(): code_blocks(path)[0] for path in PAGES}
RUNNABLE = {page: blocks for page, blocks in BLOCKS.items() if any(not b.no_run for b in blocks)}


def test_pages_have_python_to_run():
    assert len(RUNNABLE) >= 10, sorted(RUNNABLE)


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_run_markers_mark_a_python_block_with_a_reason(path):
    blocks, stray = code_blocks(path)
    assert not stray, (
        f"{path.name}: the no-run marker(s) at line(s) {stray} must be the line right before "
        "a ```python block"
    )
    for block in blocks:
        if block.no_run is not None:
            assert len(block.no_run) >= 10, (
                f"{block.page}:{block.line}: say why the block cannot run: <!-- no-run: REASON -->"
            )


def test_no_run_blocks_are_few():
    blocks = [b for page in BLOCKS.values() for b in page]
    marked = [b for b in blocks if b.no_run is not None]
    summary = "\n".join(f"  {b.page}:{b.line}: {b.no_run}" for b in marked)
    print(f"{len(marked)} of {len(blocks)} python blocks are marked no-run:\n{summary}")
    assert len(marked) * 4 < len(blocks), (
        f"{len(marked)} of {len(blocks)} python blocks are marked no-run; make them run:\n{summary}"
    )


@pytest.mark.parametrize("page", sorted(RUNNABLE))
def test_page_code_runs(page, tmp_path, monkeypatch, no_network):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "zoo-cache"))
    monkeypatch.setenv("ZOO_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("ZOO_NETWORK", "never")  # a Hub card fails at once, not after retries
    environment = dict(os.environ)  # what the blocks set (ZOO_NETWORK=never, ...) is undone
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    namespace = {"__name__": "docs_" + re.sub(r"\W", "_", page)}
    try:
        for block in RUNNABLE[page]:
            if block.no_run is not None:
                continue
            code = compile(block.code, f"{page}:{block.line}", "exec")
            try:
                exec(code, namespace)
            except Exception as exc:
                raise AssertionError(
                    f"the python block at {page}:{block.line} raised {type(exc).__name__}: "
                    f"{exc}\n(fix the docs, or mark a block that cannot run offline with "
                    "<!-- no-run: REASON -->)"
                ) from exc
    finally:
        torch.set_num_threads(threads)
        os.environ.clear()
        os.environ.update(environment)

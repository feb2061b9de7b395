"""The layers of zoo_core (docs/concepts.md#layers): import-linter's contracts hold, and an
import inside a function exists only to keep torch off a start-up path, saying so."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import zoo_core

ROOT = Path(zoo_core.__file__).parent
REPO = ROOT.parent


def lint_imports() -> str:
    found = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("import-linter is not installed: make setup installs it (the test extra)")
    return found


def test_the_layer_and_independence_contracts_are_kept():
    done = subprocess.run(
        [lint_imports(), "--no-cache"], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "3 kept, 0 broken" in done.stdout


def test_a_back_edge_is_named(tmp_path):
    """A copy of the package with one import from the ground to the catalog fails, and the
    report names the import."""
    copy = tmp_path / "zoo_core"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("__pycache__", "*.safetensors"))
    protocol = copy / "protocol.py"
    protocol.write_text(
        protocol.read_text(encoding="utf-8") + "\n\ndef _back():\n    import zoo_core.catalog\n",
        encoding="utf-8",
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    done = subprocess.run(
        [lint_imports(), "--no-cache", "--contract", "zoo-core-layers"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert done.returncode == 1, done.stdout[-3000:]
    assert "zoo_core.protocol is not allowed to import zoo_core.catalog" in done.stdout


def deferred_imports(path: Path) -> list[tuple[int, str, str]]:
    """``(line, module, reason)`` of each import of a zoo_core module inside a function of
    ``path``: the reason is the comment on its line or on the lines right above it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom):
                module = inner.module or ""
            elif isinstance(inner, ast.Import):
                module = inner.names[0].name
            else:
                continue
            if module.split(".")[0] != "zoo_core":
                continue
            comments = [lines[inner.lineno - 1].partition("#")[2]]
            above = inner.lineno - 2
            while above >= 0 and lines[above].strip().startswith(("#", "from ", "import ")):
                comments.append(lines[above].partition("#")[2])
                above -= 1
            found.append((inner.lineno, module, " ".join(comments)))
    return found


def test_each_deferred_internal_import_keeps_torch_off_a_start_up_path():
    undeclared = [
        f"{path.relative_to(REPO)}:{line} imports {module} inside a function"
        for path in sorted(ROOT.rglob("*.py"))
        for line, module, reason in deferred_imports(path)
        if "torch" not in reason
    ]
    assert not undeclared, (
        "an import inside a function must keep torch off `import zoo_core`, `zoo list` or "
        "pytest's start-up and say so in a comment; else import at the top:\n"
        + "\n".join(undeclared)
    )

"""The import graph of zoo_core in three numbers: its internal imports at module level, inside
functions (deferred) and under TYPE_CHECKING, each import statement counted once; then the
import cycles between its modules (deferred imports included), if any.

    .venv/bin/python scripts/import_stats.py [--deferred]

``--deferred`` lists each deferred import (module:line -> imported module).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "zoo_core"


def module_names() -> dict[str, Path]:
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported(node: ast.Import | ast.ImportFrom, here: str, names: dict[str, Path]) -> str:
    """The zoo_core module an import statement names ("" for another package)."""
    if isinstance(node, ast.Import):
        target = node.names[0].name
    else:
        base = here.split(".")
        if node.level:
            package = base if names[here].name == "__init__.py" else base[:-1]
            base = package[: len(package) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        first = f"{target}.{node.names[0].name}"
        target = first if first in names else target
    return target if target.split(".")[0] == "zoo_core" else ""


def scan(names: dict[str, Path]):
    counts = {"module level": 0, "deferred": 0, "TYPE_CHECKING": 0}
    edges: dict[str, set[str]] = defaultdict(set)
    deferred = []

    def visit(node, here, depth, typing_only):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for inner in child.body:
                    visit_one(inner, here, depth, True)
                continue
            visit_one(child, here, depth, typing_only)

    def visit_one(child, here, depth, typing_only):
        if isinstance(child, ast.Import | ast.ImportFrom):
            target = imported(child, here, names)
            if not target:
                return
            kind = "TYPE_CHECKING" if typing_only else "deferred" if depth else "module level"
            counts[kind] += 1
            if not typing_only:
                while target not in names and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != here:
                    edges[here].add(target)
            if kind == "deferred":
                deferred.append(f"{here}:{child.lineno} -> {target}")
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            visit(child, here, depth + 1, typing_only)
        else:
            visit(child, here, depth, typing_only)

    for here, path in names.items():
        visit(ast.parse(path.read_text(encoding="utf-8")), here, 0, False)
    return counts, edges, deferred


def cycles(edges: dict[str, set[str]], names) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    sys.setrecursionlimit(10_000)
    index, low, stack, on, found = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in names:
        if v not in index:
            strong(v)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deferred", action="store_true", help="list the deferred imports")
    args = parser.parse_args()
    names = module_names()
    counts, edges, deferred = scan(names)
    print(f"zoo_core: {len(names)} modules; internal imports: "
          + ", ".join(f"{n} {kind}" for kind, n in counts.items()))  # fmt: skip
    loops = cycles(edges, names)
    print(f"import cycles: {len(loops)}" + "".join(f"\n  {' '.join(c)}" for c in loops))
    if args.deferred:
        print("\n".join(deferred))


if __name__ == "__main__":
    main()

"""Wall time of the core's everyday operations, against a reference measured in the same run.

    .venv/bin/python benchmarks/core.py [--repeats 7]

Targets: ``import zoo_core``, ``zoo list`` and ``zoo info ID`` under 0.5 s each (they import
no torch). References: the same job done by timm (``import timm``, ``timm.list_models()``,
a pretrained config lookup), and for ``zoo.load("gmm-ring8")`` the bare minimum work —
reading the same safetensors file and ``load_state_dict`` into the same module — so the
ratio is the cost of the zoo's checks (registry, sha256, header validation, strict loading).
Each figure is the median over ``--repeats`` runs; subprocess figures include interpreter
start-up (shown on its own as the first row).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_name  # benchmarks/machine.py

PY = sys.executable
ZOO = [PY, "-m", "zoo_core"]


def wall(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_process(fn, repeats: int) -> float:
    fn()  # warm: imports, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    repeats = parser.parse_args().repeats
    print(f"CPU: {cpu_name()}; python {sys.version.split()[0]}; median of {repeats} runs")

    rows = [("python -c pass (start-up)", wall([PY, "-c", "pass"], repeats), None, None)]
    rows.append(
        (
            "import zoo_core",
            wall([PY, "-c", "import zoo_core"], repeats),
            "import timm",
            wall([PY, "-c", "import timm"], repeats),
        )
    )
    rows.append(
        (
            "zoo list",
            wall([*ZOO, "list"], repeats),
            "timm.list_models()",
            wall([PY, "-c", "import timm; timm.list_models()"], repeats),
        )
    )
    rows.append(
        (
            "zoo info gmm-ring8",
            wall([*ZOO, "info", "gmm-ring8"], repeats),
            "timm pretrained cfg lookup",
            wall([PY, "-c", "import timm; timm.models.get_pretrained_cfg('resnet18')"], repeats),
        )
    )

    import safetensors.torch

    import zoo_core as zoo
    from zoo_core.builtin.gmm import GaussianMixture

    path = Path(zoo.download("gmm-ring8")["model.safetensors"])

    def bare_load():
        model = GaussianMixture.from_config({"components": 8, "dim": 2})
        model.load_state_dict(safetensors.torch.load_file(path))
        return model.eval()

    rows.append(
        (
            'zoo.load("gmm-ring8")',
            in_process(lambda: zoo.load("gmm-ring8"), repeats),
            "safetensors + load_state_dict",
            in_process(bare_load, repeats),
        )
    )

    print(f"{'operation':32} {'ours (s)':>9}  {'reference':32} {'ref (s)':>8} {'ratio':>6}")
    for name, ours, ref_name, ref in rows:
        ref_text = f"{ref:8.3f}" if ref is not None else " " * 8
        ratio = f"{ours / ref:6.2f}" if ref else " " * 6
        print(f"{name:32} {ours:9.3f}  {ref_name or '':32} {ref_text} {ratio}")
    targets = {name: ours for name, ours, *_ in rows[1:4]}
    slow = [name for name, ours in targets.items() if ours >= 0.5]
    print(
        "target (< 0.5 s for import/list/info):", "missed by " + ", ".join(slow) if slow else "met"
    )


if __name__ == "__main__":
    main()

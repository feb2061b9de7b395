"""Mode collapse on the 2-D mixtures: PacGAN's Table 1 (Lin et al. 2018, arXiv 1712.04086)
reproduced through the zoo's trainer and evaluation harness.

    .venv/bin/python benchmarks/gan_modes.py [--runs 3] [--steps N] [--jobs 2] [--out DIR]

For each dataset (ring8, grid25), packing m (1 = the plain GAN, 2, 3, 4) and run r, the
recipe ``plugins/zoo-gan/recipes/gan-<dataset>.yaml`` is trained for its own steps (ring8
6000, grid25 30000; ``--steps`` sets another count for every dataset) with
the discriminator packing m samples, ``train.batch_size = 100 m`` (100 packs per batch, as in
the paper) and seed r; the final generator is scored with the ``ring8-modes`` /
``grid25-modes`` protocol (2500 samples: modes captured, share of high-quality samples,
reverse KL of the mode histogram). The table gives mean ± standard error over runs beside
the paper's figures.

Runs are kept under ``--out`` (default ``runs-gan-modes/``) and their records appended to
``--out/results.jsonl``; a finished run is not trained again, an interrupted one resumes
(bit-identically). Stop it with Ctrl-C or by signalling its whole process group: a worker
whose parent alone was killed goes on with the runs already queued for it.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "plugins" / "zoo-gan" / "recipes"

# Lin et al. 2018, Table 1: mean ± standard error over 10 runs (modes, high-quality %, reverse KL).
PAPER = {
    ("ring8", 1): ("6.3±0.5", "98.2±0.2", "0.45±0.09"),
    ("ring8", 2): ("7.9±0.1", "95.6±2.0", "0.07±0.03"),
    ("ring8", 3): ("7.8±0.1", "97.7±0.3", "0.10±0.02"),
    ("ring8", 4): ("7.8±0.1", "95.9±1.4", "0.07±0.02"),
    ("grid25", 1): ("17.3±0.8", "94.8±0.7", "0.70±0.07"),
    ("grid25", 2): ("23.8±0.7", "91.3±0.8", "0.13±0.04"),
    ("grid25", 3): ("24.6±0.4", "94.2±0.4", "0.06±0.02"),
    ("grid25", 4): ("24.8±0.2", "93.6±0.6", "0.04±0.01"),
}


def run_one(dataset: str, packing: int, run: int, steps: int | None, out: Path) -> dict:
    """Train one (dataset, packing, run) and score it; returns its row."""
    import torch

    torch.set_num_threads(1)
    import zoo_core
    from zoo_core.training import train
    from zoo_core.training.config import load_recipe

    overrides = {
        "trainer.discriminator.packing": packing,
        "train.batch_size": 100 * packing,
        "train.seed": run,
        "model_id": None,
    }
    if steps is not None:
        overrides["train.steps"] = steps
    recipe = load_recipe(RECIPES / f"gan-{dataset}.yaml", overrides)
    directory = out / f"{dataset}-pac{packing}-run{run}"
    recorded = directory / "recipe.yaml"
    if recorded.exists() and load_recipe(recorded) != recipe:
        raise SystemExit(f"{directory} holds a run of another recipe (another --steps?); "
                         f"choose another --out")  # fmt: skip
    began = time.perf_counter()
    if not (directory / "model").exists():
        train(recipe, directory, resume=(directory / "checkpoints").exists(), progress=False)
    wall = time.perf_counter() - began
    model = zoo_core.from_pretrained(directory / "model")
    record = zoo_core.evaluate(model, f"{dataset}-modes", cache=False)
    metrics = record.metrics
    return {
        "dataset": dataset,
        "packing": packing,
        "run": run,
        "steps": recipe.train.steps,
        "modes": metrics["modes"],
        "high_quality": metrics["high_quality"],
        "reverse_kl": metrics["reverse_kl"],
        "train_s": round(wall, 1),
        "protocol_hash": record.protocol_hash,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per method (paper: 10)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps of every run (default: the recipe's; the paper: "
                        "400,000)")  # fmt: skip
    parser.add_argument("--packings", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--datasets", nargs="+", default=["ring8", "grid25"])
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (1 thread each)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs-gan-modes")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    done = {(r["dataset"], r["packing"], r["run"], r["steps"]): r for r in _read(results)}
    steps = {d: args.steps or _recipe_steps(d) for d in args.datasets}
    todo = [
        (d, m, r)
        for d in args.datasets
        for m in args.packings
        for r in range(args.runs)
        if (d, m, r, steps[d]) not in done
    ]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_one, d, m, r, steps[d], args.out) for d, m, r in todo]
        for future in futures:
            row = future.result()
            with results.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
            print(f"  {row['dataset']} PacGAN{row['packing']} run {row['run']}: "
                  f"{row['modes']} modes, {100 * row['high_quality']:.1f}% HQ, rev-KL "
                  f"{row['reverse_kl']:.3f} ({row['train_s']:.0f} s)", flush=True)  # fmt: skip
    rows = [r for r in _read(results) if r["steps"] == steps.get(r["dataset"])]
    print_table(rows, args.datasets, args.packings)


def print_table(rows: list[dict], datasets: list[str], packings: list[int]) -> None:
    steps = ", ".join(f"{d} {r['steps']}" for d, r in {r["dataset"]: r for r in rows}.items())
    print(f"\nmean ± standard error over runs; ours trained {steps} steps of batch 100 packs "
          f"(the paper: 400 epochs of 100,000 points = 400,000 steps)\n")  # fmt: skip
    head = "| method | runs |"
    for d in datasets:
        head += f" {d} modes | {d} HQ % | {d} rev-KL |"
    print(head)
    print("|" + "---|" * (2 + 3 * len(datasets)))
    for m in packings:
        name = "GAN" if m == 1 else f"PacGAN{m}"
        ours, paper = f"| {name} (ours) |", f"| {name} (paper) | 10 |"
        counts = []
        for d in datasets:
            sel = [r for r in rows if r["dataset"] == d and r["packing"] == m]
            counts.append(len(sel))
            for key, scale in (("modes", 1), ("high_quality", 100), ("reverse_kl", 1)):
                ours += f" {_mean_se([scale * r[key] for r in sel])} |"
            for figure in PAPER[(d, m)]:
                paper += f" {figure} |"
        print(ours.replace("(ours) |", f"(ours) | {min(counts)} |", 1))
        print(paper)


def _recipe_steps(dataset: str) -> int:
    from zoo_core.training.config import load_recipe

    return load_recipe(RECIPES / f"gan-{dataset}.yaml").train.steps


def _mean_se(values: list[float]) -> str:
    if not values:
        return "–"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.2f}"
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return f"{mean:.2f}±{math.sqrt(var / len(values)):.2f}"


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


if __name__ == "__main__":
    main()

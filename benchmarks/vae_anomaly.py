"""One-class anomaly detection on Fashion-MNIST with a VAE's negative ELBO.

    .venv/bin/python benchmarks/vae_anomaly.py [--steps 2000] [--jobs 2] [--out DIR]

The protocol of the one-class literature (e.g. Ruff et al. 2018, "Deep One-Class
Classification", ICML; Golan & El-Yaniv 2018, arXiv 1805.10917): for each class c, a VAE is
trained on the train split's images of class c only (6,000), through ``zoo train`` with the
recipe of ``vae-fashion`` (``trainer.classes = [c]``, ``--steps`` steps, seed 0); every image
of the test split (10,000) is scored with the negative ELBO (``anomaly_score``: one seeded
posterior draw, nats) and the AUROC of class c (normal) against the nine others (anomalous)
is computed. One row per class, and their mean.

A likelihood favours simple images whatever it was trained on (Nalisnick et al. 2019, arXiv
1810.09136): a model of shirts gives trousers, with fewer lit pixels, a higher likelihood than
shirts. The second AUROC corrects the score by the image's complexity, as Serrà et al. 2020
(arXiv 1909.11480) propose: S(x) = −ELBO(x) in bits − L(x), with L(x) the bits of the image
compressed as a PNG (the test statistic of their eq. 2).

Runs are kept under ``--out`` (default ``runs-vae-anomaly/``), their rows appended to
``--out/results.jsonl``; a finished class is not trained again, an interrupted one resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "plugins" / "zoo-vae" / "recipes" / "vae-fashion.yaml"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")  # fmt: skip


def run_one(label: int, steps: int, out: Path) -> dict:
    """Train the one-class VAE of ``label`` and score the test split; returns its row."""
    torch.set_num_threads(1)
    from sklearn.metrics import roc_auc_score

    import zoo_core
    from zoo_core.data import load_dataset
    from zoo_core.training import train
    from zoo_core.training.config import load_recipe

    overrides = {
        "trainer.classes": [label],
        "trainer.kl_warmup_steps": min(1000, steps // 4),
        "train.steps": steps,
        "train.sample_every": None,
        "model_id": None,
    }
    recipe = load_recipe(RECIPE, overrides)
    directory = out / f"class{label}"
    recorded = directory / "recipe.yaml"
    if recorded.exists() and load_recipe(recorded) != recipe:
        raise SystemExit(f"{directory} holds a run of another recipe (another --steps?); "
                         f"choose another --out")  # fmt: skip
    began = time.perf_counter()
    if not (directory / "model").exists():
        train(recipe, directory, resume=(directory / "checkpoints").exists(), progress=False)
    wall = time.perf_counter() - began
    model = zoo_core.from_pretrained(directory / "model")
    test = load_dataset("fashion-mnist", "test")
    scores = torch.cat([model.anomaly_score(test.x[i : i + 1000]) for i in range(0, 10000, 1000)])
    normal = (test.y == label).numpy()
    auroc = roc_auc_score(~normal, scores.numpy())  # anomalies are the positives
    corrected = torch.cat([model.anomaly_score(test.x[i : i + 1000], complexity=True)
                           for i in range(0, 10000, 1000)])  # fmt: skip
    return {
        "class": label,
        "steps": steps,
        "auroc": float(auroc),
        "auroc_complexity": float(roc_auc_score(~normal, corrected.numpy())),
        "normal_nats": float(scores[normal].mean()),
        "anomalous_nats": float(scores[~normal].mean()),
        "train_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps per class")
    parser.add_argument("--classes", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--jobs", type=int, default=1, help="classes trained at once")
    parser.add_argument("--out", type=Path, default=ROOT / "runs-vae-anomaly")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    done = {(r["class"], r["steps"]) for r in _read(results) if "auroc_complexity" in r}
    todo = [c for c in args.classes if (c, args.steps) not in done]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_one, c, args.steps, args.out) for c in todo]
        for future in futures:
            row = future.result()
            with results.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
            print(f"  class {row['class']}: AUROC {row['auroc']:.4f} ({row['train_s']:.0f} s)",
                  flush=True)  # fmt: skip
    rows = {r["class"]: r for r in _read(results) if r["steps"] == args.steps
            and "auroc_complexity" in r}  # fmt: skip
    print_table([rows[c] for c in args.classes if c in rows], args.steps)


def print_table(rows: list[dict], steps: int) -> None:
    print(f"\none-class AUROC on the Fashion-MNIST test split, score = negative ELBO; each "
          f"VAE trained {steps} steps of 128 on its class\n")  # fmt: skip
    print("| class | name | AUROC, −ELBO | AUROC, −ELBO − PNG bits | −ELBO normal (nats) | "
          "−ELBO others (nats) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['class']} | {CLASSES[r['class']]} | {r['auroc']:.3f} | "
              f"{r['auroc_complexity']:.3f} | {r['normal_nats']:.0f} | "
              f"{r['anomalous_nats']:.0f} |")  # fmt: skip
    if rows:
        mean = sum(r["auroc"] for r in rows) / len(rows)
        corrected = sum(r["auroc_complexity"] for r in rows) / len(rows)
        print(f"| mean | | {mean:.3f} | {corrected:.3f} | | |")


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


if __name__ == "__main__":
    main()

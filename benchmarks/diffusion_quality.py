"""Sample quality of `ddpm-fashion` per sampler, step count and precision, through the
evaluation harness (`fashion-fid-10k`, the bundled fashion-net feature space).

    .venv/bin/python benchmarks/diffusion_quality.py [-n 10000] [--device cpu|cuda]

Rows: DDIM at 10/20/50 steps, DPM-Solver++ at 10/20 steps, and DDIM-50 with the UNet in
bf16 autocast, each with FID, KID, precision/recall, NFE and images/s. It answers two
questions of the diffusion plugin: does DPM-Solver++ reach DDIM-50's FID with fewer network
evaluations, and what does bf16 inference cost in quality. With `-n` below 10000 the
numbers are under their own protocol hash (FID is biased upwards at small n; compare rows
of one run with each other, and KID, which is unbiased, across runs). Sample shards are
cached in $ZOO_CACHE_DIR, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import time

import torch

import zoo_core
from zoo_core.evaluation.results import append_record
from zoo_core.evaluation.run import resolve_protocol

ROWS = (
    ("ddim", 10, "fp32"),
    ("ddim", 20, "fp32"),
    ("ddim", 50, "fp32"),
    ("dpm-solver++", 10, "fp32"),
    ("dpm-solver++", 20, "fp32"),
    ("ddim", 50, "bf16"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10000, help="samples per row")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--out", help="also append each row's record to this results.jsonl "
                        "(render it with zoo_core.evaluation.leaderboard.render)")  # fmt: skip
    args = parser.parse_args()
    model = zoo_core.load("ddpm-fashion")
    base = resolve_protocol("fashion-fid-10k", n=args.n, allow_small=True)
    print(f"ddpm-fashion, fashion-fid-10k with n={args.n}, device {args.device}, "
          f"torch {torch.__version__}")  # fmt: skip
    header = f"{'sampler':14} {'steps':>5} {'prec':>4} {'NFE':>4} {'FID':>8} {'KID':>16} "
    print(header + f"{'prec.':>6} {'recall':>6} {'img/s':>7} {'wall s':>7}")
    for sampler, steps, precision in ROWS:
        options = {"sampler": sampler, "steps": steps, "precision": precision}
        protocol = base.with_options("diffusion", options)
        began = time.perf_counter()
        record = zoo_core.evaluate(model, protocol, device=args.device, progress=args.progress)
        if args.out:
            append_record(args.out, record)
        m, s = record.metrics, record.speed
        kid = f"{m['kid']:.4g}±{m['kid_std']:.2g}"
        print(f"{sampler:14} {steps:5d} {precision:>4} {s.nfe:4.0f} {m['fid']:8.3f} "
              f"{kid:>16} {m['precision']:6.3f} {m['recall']:6.3f} {s.samples_per_s:7.2f} "
              f"{time.perf_counter() - began:7.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

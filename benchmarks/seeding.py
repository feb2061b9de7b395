"""Cost of drawing noise under the seeding rule, against ``torch.randn`` in the same run.

    .venv/bin/python benchmarks/seeding.py [--device cpu|cuda] [--repeats 20]

``zoo_core.seeding.Noise.randn`` hashes (seed, sample index, step, element) with SplitMix64
and applies Box-Muller; ``torch.randn`` advances one global generator (and so cannot keep a
sample's noise independent of the batch it is drawn in). Also shown: the per-sample
generator loop that the seeding rule would otherwise need (one ``torch.Generator`` per
sample), which the counter-based design replaces.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from zoo_core.seeding import Noise

SHAPES = {"points (4096, 2)": (4096, (2,)), "image batch (256, 3, 32, 32)": (256, (3, 32, 32))}


def timed(fn, repeats: int, device: str) -> float:
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def per_sample_generators(batch: int, shape: tuple[int, ...], device: str) -> torch.Tensor:
    rows = []
    for i in range(batch):
        g = torch.Generator(device=device).manual_seed(i)
        rows.append(torch.randn(shape, generator=g, device=device))
    return torch.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(f"device {args.device}, {torch.get_num_threads()} CPU threads, median of {args.repeats}")
    header = (
        f"{'draw':30} {'Noise.randn':>12} {'torch.randn':>12} {'ratio':>6} {'per-sample gen':>15}"
    )
    print(header)
    for name, (batch, shape) in SHAPES.items():
        noise = Noise.for_range(0, 0, batch, args.device)
        draws = {
            "ours": lambda noise=noise, shape=shape: noise.randn(*shape, step=7),
            "ref": lambda b=batch, s=shape: torch.randn(b, *s, device=args.device),
            "loop": lambda b=batch, s=shape: per_sample_generators(b, s, args.device),
        }
        t = {key: timed(fn, args.repeats, args.device) * 1e3 for key, fn in draws.items()}
        ratio = t["ours"] / t["ref"]
        print(f"{name:30} {t['ours']:10.3f}ms {t['ref']:10.3f}ms {ratio:6.1f} {t['loop']:13.3f}ms")


if __name__ == "__main__":
    main()

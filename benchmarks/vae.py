"""VAE speed and quality: encode/decode throughput of each bundled VAE, the importance-weighted
bound on the Fashion-MNIST test split for K = 1, 10, 100, imputation against mean filling,
the Stable Diffusion autoencoder's decode against diffusers, and the one-class anomaly table.

    .venv/bin/python benchmarks/vae.py [--section throughput iwae inpaint autoencoder-kl
        anomaly] [-n 10000] [--threads 1]

- throughput: images/s of ``encode`` and ``decode`` of every bundled VAE, batch 256 (best of 3);
- iwae: ``log_prob(x, k=K)`` as bits/dim, mean ± standard error over the first ``-n`` test
  images, with its wall time (the VQ-VAE's bound is deterministic: one row);
- inpaint: the squared error on the missing pixels of the first ``--inpaint-n`` test images,
  for three masks (the bottom half, the central 14x14 square, a random half of the pixels),
  of each bundled VAE's ``inpaint`` methods against two mean fills (each pixel's mean over
  the train split; the mean of the image's observed pixels);
- autoencoder-kl: ``benchmarks/vae_kl.py`` (decode of a 256x256 image's latents against
  diffusers, fp32 and bf16);
- anomaly: the table of ``benchmarks/vae_anomaly.py`` from its results (run that first).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

import zoo_core

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ("vae-fashion", "beta-vae-fashion", "vqvae-fashion")


def _best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def throughput(test) -> None:
    print(f"\n## throughput (cpu, torch {torch.__version__}, {torch.get_num_threads()} threads)")
    print("| model | parameters | encode images/s | decode images/s |\n|---|---|---|---|")
    x = test.x[:256]
    for name in BUNDLED:
        model = zoo_core.load(name)
        z = model.encode(x)
        enc = _best(lambda m=model: m.encode(x))
        dec = _best(lambda m=model, z=z: m.decode(z))
        params = sum(p.numel() for p in model.parameters())
        print(f"| {name} | {params / 1e6:.2f}M | {256 / enc:,.0f} | {256 / dec:,.0f} |")


def iwae(test, n: int) -> None:
    print(f"\n## importance-weighted bound, Fashion-MNIST test split, first {n} images")
    print("| model | K | bits/dim (bound) | nats/image | wall s |\n|---|---|---|---|---|")
    x = test.x[:n]
    dims = math.prod(x.shape[1:])
    for name in BUNDLED:
        model = zoo_core.load(name)
        ks = (1, 10, 100) if model.architecture == "conv-vae" else (None,)
        for k in ks:
            began = time.perf_counter()
            options = {} if k is None else {"k": k}
            logp = torch.cat([model.log_prob(x[i : i + 500], **options) for i in range(0, n, 500)])
            wall = time.perf_counter() - began
            bpd = -logp.double() / (dims * math.log(2))
            sem = bpd.std() / math.sqrt(n)
            print(f"| {name} | {k or '(exact codes)'} | {bpd.mean():.4f} ± {sem:.4f} | "
                  f"{-logp.mean():.1f} | {wall:.1f} |")  # fmt: skip


def masks(n: int) -> dict[str, torch.Tensor]:
    """True where observed."""
    bottom = torch.ones(1, 1, 28, 28, dtype=torch.bool)
    bottom[..., 14:, :] = False
    centre = torch.ones(1, 1, 28, 28, dtype=torch.bool)
    centre[..., 7:21, 7:21] = False
    g = torch.Generator().manual_seed(0)
    half = torch.rand(n, 1, 28, 28, generator=g) < 0.5
    return {"bottom half": bottom, "centre 14x14": centre, "random 50%": half}


def inpaint(train, test, n: int) -> None:
    print(f"\n## imputation: mean squared error on the missing pixels, first {n} test images")
    print("| mask | method | MSE | vs train-mean fill |\n|---|---|---|---|")
    x = test.x[:n]
    pixel_mean = train.x.mean(0, keepdim=True)
    models = {name: zoo_core.load(name) for name in BUNDLED}
    for mask_name, mask in masks(n).items():
        observed = mask.expand_as(x)
        missing = ~observed

        def mse(filled: torch.Tensor, missing: torch.Tensor = missing) -> float:
            return float((filled - x)[missing].square().mean())

        base = mse(torch.where(observed, x, pixel_mean.expand_as(x)))
        weights = observed.float()
        own = (x * weights).sum((2, 3), keepdim=True) / weights.sum((2, 3), keepdim=True)
        own_fill = mse(torch.where(observed, x, own.expand_as(x)))
        rows = [("train-mean fill (baseline)", base), ("observed-mean fill", own_fill)]
        for name, model in models.items():
            for method in model.methods:
                began = time.perf_counter()
                filled = torch.cat([model.inpaint(x[i : i + 250], mask if mask.shape[0] == 1
                                                  else mask[i : i + 250], method=method)
                                    for i in range(0, n, 250)])  # fmt: skip
                wall = time.perf_counter() - began
                rows.append((f"{name} {method} ({wall:.0f} s)", mse(filled)))
        for method, value in rows:
            print(f"| {mask_name} | {method} | {value:.4f} | {value / base:.2f} |")


def autoencoder_kl(threads: int) -> None:
    print("\n## autoencoder-kl (benchmarks/vae_kl.py)")
    script = ROOT / "benchmarks" / "vae_kl.py"
    subprocess.run([sys.executable, str(script), "--threads", str(threads)], check=True)


def anomaly() -> None:
    print("\n## one-class anomaly detection (benchmarks/vae_anomaly.py)")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import vae_anomaly

    path = ROOT / "runs-vae-anomaly" / "results.jsonl"
    rows = vae_anomaly._read(path)
    if not rows:
        print(f"no results in {path}: run benchmarks/vae_anomaly.py first")
        return
    steps = max(r["steps"] for r in rows)
    chosen = {r["class"]: r for r in rows if r["steps"] == steps}
    vae_anomaly.print_table([chosen[c] for c in sorted(chosen)], steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sections = ("throughput", "iwae", "inpaint", "autoencoder-kl", "anomaly")
    parser.add_argument("--section", nargs="+", choices=sections, default=list(sections))
    parser.add_argument("-n", type=int, default=10000, help="test images for the bound")
    parser.add_argument("--inpaint-n", type=int, default=1000, help="test images to impute")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from zoo_core.data import load_dataset

    test = load_dataset("fashion-mnist", "test")
    if "throughput" in args.section:
        throughput(test)
    if "iwae" in args.section:
        iwae(test, args.n)
    if "inpaint" in args.section:
        inpaint(load_dataset("fashion-mnist", "train"), test, args.inpaint_n)
    if "autoencoder-kl" in args.section:
        autoencoder_kl(args.threads)
    if "anomaly" in args.section:
        anomaly()


if __name__ == "__main__":
    main()

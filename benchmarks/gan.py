"""GAN speed and quality: sampling throughput of each bundled GAN, the shared training loop
against a hand-written PyTorch DCGAN loop, and fashion-fid-10k of the bundled image GANs.

    .venv/bin/python benchmarks/gan.py [--section sampling|training|fid ...] [--steps 200]
        [--device cpu|cuda] [-n 10000] [--out results.jsonl]

- sampling: samples/s of every bundled GAN at its default batch size (best of 3);
- training: ``dcgan-fashion``'s recipe for ``--steps`` steps through ``zoo_core.training``
  (checkpointing, logging, diagnostics and all) against the same networks, optimizers,
  losses and batches in a plain loop; the ratio of steps/s (target: at least 0.95), best of
  3 alternating repeats;
- fid: ``fashion-fid-10k`` (FID, KID, precision/recall in fashion-net's feature space) of
  each bundled image GAN, as the leaderboard computes it; ``--out`` appends the records.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import zoo_core

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "plugins" / "zoo-gan" / "recipes" / "dcgan-fashion.yaml"


def bundled_gans() -> list[str]:
    return zoo_core.list_models(family="gan")


def sampling(device: str) -> None:
    print(f"\n## sampling ({device}, torch {torch.__version__}, {torch.get_num_threads()} threads)")
    print("| model | batch | samples/s |\n|---|---|---|")
    for name in bundled_gans():
        model = zoo_core.load(name).to(device)
        options = {"labels": 0} if "conditional" in model.capabilities else {}
        n = model.default_batch_size
        model.sample(min(n, 64), seed=0, **options)  # warm-up
        best = float("inf")
        for repeat in range(3):
            began = time.perf_counter()
            model.sample(n, seed=repeat, **options)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - began)
        print(f"| {name} | {n} | {n / best:,.0f} |")


def hand_written_dcgan(steps: int) -> float:
    """The recipe's training in plain PyTorch; returns the seconds it took."""
    import torch.nn.functional as F
    from zoo_gan.dcgan import DCGAN, DCGANDiscriminator

    from zoo_core.data import load_dataset
    from zoo_core.training.config import load_recipe

    recipe = load_recipe(RECIPE)
    began = time.perf_counter()
    torch.manual_seed(recipe.train.seed)
    g = DCGAN.from_config(recipe.config)
    trainer_cfg = recipe.trainer["discriminator"]
    from zoo_gan.dcgan import DCGANDiscriminatorConfig

    d = DCGANDiscriminator(DCGANDiscriminatorConfig(**trainer_cfg), g.config)
    opt = {k: recipe.train.optimizers[k] for k in ("discriminator", "generator")}
    opt_d = torch.optim.Adam(d.parameters(), lr=opt["discriminator"].lr,
                             betas=opt["discriminator"].betas)  # fmt: skip
    opt_g = torch.optim.Adam(g.parameters(), lr=opt["generator"].lr, betas=opt["generator"].betas)
    data = load_dataset("fashion-mnist", "train")
    b = recipe.train.batch_size
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        index = torch.randint(len(data), (b,), generator=generator)
        x = data.x[index] * 2 - 1
        with torch.no_grad():
            fake = g.synthesize(torch.randn(b, g.z_dim))
        loss_d = F.softplus(-d(x)).mean() + F.softplus(d(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-d(g.synthesize(torch.randn(b, g.z_dim)))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    return time.perf_counter() - began


def zoo_loop(steps: int) -> float:
    from zoo_core.training import train
    from zoo_core.training.config import load_recipe

    overrides = {"train.steps": steps, "train.sample_every": None,
                 "train.ema.start": 0, "train.schedule.warmup_steps": 0}  # fmt: skip
    recipe = load_recipe(RECIPE, overrides)
    with tempfile.TemporaryDirectory() as out:
        began = time.perf_counter()
        train(recipe, Path(out) / "run", progress=False)
        return time.perf_counter() - began


def training(steps: int) -> None:
    print(f"\n## training dcgan-fashion, {steps} steps of batch 64 (CPU, "
          f"{torch.get_num_threads()} threads)")  # fmt: skip
    ours, theirs = float("inf"), float("inf")
    for _ in range(3):
        theirs = min(theirs, hand_written_dcgan(steps))
        ours = min(ours, zoo_loop(steps))
    print("| loop | steps/s |\n|---|---|")
    print(f"| hand-written PyTorch | {steps / theirs:.2f} |")
    print(f"| zoo_core.training (EMA, checkpoint, logging, diagnostics) | {steps / ours:.2f} |")
    print(f"\nratio zoo / hand-written: {theirs / ours:.3f} (target >= 0.95)")


def fid(n: int, device: str, out: str | None) -> None:
    from zoo_core.evaluation.results import append_record

    print(f"\n## fashion-fid-10k (n={n}, device {device})")
    print("| model | FID | KID | precision | recall | samples/s |\n|---|---|---|---|---|---|")
    for name in bundled_gans():
        model = zoo_core.load(name)
        if model.modality != "image":
            continue
        record = zoo_core.evaluate(model, "fashion-fid-10k", n=n, allow_small=n < 10000,
                                   device=device)  # fmt: skip
        if out:
            append_record(out, record)
        m, s = record.metrics, record.speed
        kid = f"{m['kid']:.1f} ± {m['kid_std']:.1f}"  # MMD² in fashion-net's feature space
        print(f"| {name} | {m['fid']:.2f} | {kid} | {m['precision']:.3f} | "
              f"{m['recall']:.3f} | {s.samples_per_s:,.0f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", nargs="+", default=["sampling", "training", "fid"],
                        choices=["sampling", "training", "fid"])  # fmt: skip
    parser.add_argument("--steps", type=int, default=200, help="training steps per timing")
    parser.add_argument("-n", type=int, default=10000, help="samples for fashion-fid-10k")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", help="append the fid records to this results.jsonl")
    args = parser.parse_args()
    if "sampling" in args.section:
        sampling(args.device)
    if "training" in args.section:
        training(args.steps)
    if "fid" in args.section:
        fid(args.n, args.device, args.out)


if __name__ == "__main__":
    main()

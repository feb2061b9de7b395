"""The shared training loop's overhead, and checkpoint save/load time, against plain PyTorch
measured in the same run.

    .venv/bin/python benchmarks/training.py [--steps 200] [--width 1024]

1. Steps/s of ``zoo_core.training.train`` against a hand-written loop (the same MLP
   autoencoder on Fashion-MNIST, batch 256, Adam, a shuffled epoch order, the loss read
   every step). Set-up and the final checkpoint and export are cancelled out by timing a
   short and a long run and dividing the difference. Target: ratio >= 0.95.
   The two loops are timed in interleaved rounds (medians), since a 2-core machine's speed
   drifts by 10% between runs.
2. Saving and loading a checkpoint of a 10M-parameter model with its Adam state (the zoo's
   atomic, committed, sha256-checked checkpoint) against ``torch.save``/``torch.load`` of
   the same state to a file.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

import zoo_core
from zoo_core.generator import Generator
from zoo_core.plugin_manager import get_plugin_manager
from zoo_core.trainer import Trainer
from zoo_core.training import checkpoint as ckpt
from zoo_core.training import train
from zoo_core.training.config import validate_recipe


class MLPConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    width: int = 1024
    latent: int = 32


class MLPAutoencoder(Generator):
    architecture: ClassVar[str] = "bench-mlp"
    Config: ClassVar[type[BaseModel]] = MLPConfig
    modality: ClassVar[str] = "image"

    def __init__(self, config: MLPConfig):
        super().__init__(config)
        w, z = config.width, config.latent
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, w), nn.ReLU(),
                                     nn.Linear(w, w), nn.ReLU(), nn.Linear(w, z))  # fmt: skip
        self.decoder = nn.Sequential(nn.Linear(z, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(),
                                     nn.Linear(w, 784), nn.Sigmoid())  # fmt: skip

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)).view_as(x)

    def sample_batch(self, noise, options):
        z = noise.randn(self.config.latent)
        return self.decoder(z).view(-1, 1, 28, 28)


class MLPTrainer(Trainer):
    architecture: ClassVar[str] = "bench-mlp"

    def training_step(self, batch, step, optimizer):
        x, _ = batch
        return {"loss": nn.functional.mse_loss(self.model.reconstruct(x), x)}


class BenchPlugin:
    @zoo_core.hookimpl
    def zoo_architectures(self):
        return {"bench-mlp": MLPAutoencoder}

    @zoo_core.hookimpl
    def zoo_trainers(self):
        return {"bench-mlp": MLPTrainer}


def recipe(steps: int, width: int):
    return validate_recipe({
        "architecture": "bench-mlp", "config": {"width": width}, "dataset": "fashion-mnist",
        "train": {"steps": steps, "batch_size": 256, "ema": None, "log_every": 10,
                  "checkpoint_every": 10**9, "optimizers": {"model": {"lr": 1e-3}}},
    })  # fmt: skip


def zoo_loop(steps: int, width: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        train(recipe(steps, width), Path(tmp) / "run", progress=False)
        return time.perf_counter() - start


def plain_loop(steps: int, width: int) -> float:
    from zoo_core.data import load_dataset

    start = time.perf_counter()
    torch.manual_seed(0)
    data = load_dataset("fashion-mnist", split="train")
    model = MLPAutoencoder(MLPConfig(width=width))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(data), generator=generator)
    per_epoch = len(data) // 256
    for step in range(steps):
        if step and step % per_epoch == 0:
            order = torch.randperm(len(data), generator=generator)
        index = order[(step % per_epoch) * 256 : (step % per_epoch + 1) * 256]
        x = data.x[index]
        loss = nn.functional.mse_loss(model.reconstruct(x), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()
    return time.perf_counter() - start


def per_step_times(steps: int, width: int, rounds: int) -> tuple[float, float]:
    """Median seconds per step of (zoo, plain), the two interleaved round by round so that
    drift of the machine's speed hits both alike."""
    zoo, plain = [], []
    for _ in range(rounds):
        for run, times in ((zoo_loop, zoo), (plain_loop, plain)):
            times.append((run(20 + steps, width) - run(20, width)) / steps)
    return statistics.median(zoo), statistics.median(plain)


def checkpoint_times(repeats: int) -> tuple[float, float, float, float, int]:
    model = MLPAutoencoder(MLPConfig(width=1870))  # 10.0M parameters
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters())
    x = torch.rand(8, 1, 28, 28)
    nn.functional.mse_loss(model.reconstruct(x), x).backward()
    optimizer.step()
    state = {"modules": {"model": model.state_dict()}, "optimizers": {"model":
             optimizer.state_dict()}, "step": 1}  # fmt: skip
    ours_save, ours_load, ref_save, ref_load = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for i in range(repeats):
            start = time.perf_counter()
            ckpt.save_checkpoint(out, i + 1, state, keep_last=1)
            ours_save.append(time.perf_counter() - start)
            start = time.perf_counter()
            ckpt.load_checkpoint(out)
            ours_load.append(time.perf_counter() - start)
            start = time.perf_counter()
            torch.save(state, out / "plain.pt")
            ref_save.append(time.perf_counter() - start)
            start = time.perf_counter()
            torch.load(out / "plain.pt", weights_only=True)
            ref_load.append(time.perf_counter() - start)
    med = statistics.median
    return med(ours_save), med(ours_load), med(ref_save), med(ref_load), params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5, help="checkpoint timings")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved loop timings")
    args = parser.parse_args()
    get_plugin_manager().register(BenchPlugin(), name="bench")
    torch.set_num_threads(torch.get_num_threads())
    ours, plain = per_step_times(args.steps, args.width, args.rounds)
    save, load, ref_save, ref_load, params = checkpoint_times(args.repeats)
    print(f"CPU threads {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"{'measure':44} {'zoo':>10} {'plain torch':>12} {'ratio':>7}")
    print(f"{'train steps/s (MLP width ' + str(args.width) + ', batch 256)':44} "
          f"{1 / ours:10.2f} {1 / plain:12.2f} {plain / ours:7.3f}")  # fmt: skip
    print(f"{f'checkpoint save, {params / 1e6:.1f}M params + Adam (s)':44} "
          f"{save:10.3f} {ref_save:12.3f} {save / ref_save:7.2f}")  # fmt: skip
    print(f"{f'checkpoint load, {params / 1e6:.1f}M params + Adam (s)':44} "
          f"{load:10.3f} {ref_load:12.3f} {load / ref_load:7.2f}")  # fmt: skip
    print("target: train steps/s ratio (zoo / plain) >= 0.95:",
          "met" if plain / ours >= 0.95 else "missed")  # fmt: skip


if __name__ == "__main__":
    main()

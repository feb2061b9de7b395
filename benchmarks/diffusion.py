"""The DDPM UNet and sampling loop against diffusers, measured in the same run.

    .venv/bin/python benchmarks/diffusion.py [--repeats 3] [--device cpu|cuda]

Rows (zoo / diffusers time as a ratio; below 1 is faster):
- the UNet forward on the `ddpm-cifar10` configuration, batch 8, fp32, and ours in bf16
  autocast against diffusers fp32 (the speed-up bf16 matrix units give);
- end-to-end DDIM-50 for 8 images: `DDPM.sample` against a hand-written diffusers loop
  (`UNet2DModel` + `DDIMScheduler`), fp32 and bf16;
- achieved GFLOP/s of the UNet forward (FLOPs counted by `torch.utils.flop_counter`) against
  a large matmul's GFLOP/s on this machine, fp32 and bf16;
- the bundled `ddpm-fashion`: images/s per sampler and step count (64 images), and the
  process's peak resident memory (CPU) or peak allocated memory (CUDA) after each.
Random weights: speed does not depend on them. Quality effects of bf16 (FID) belong to the
evaluation harness.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from diffusers import DDIMScheduler, UNet2DModel

import zoo_core

CIFAR10 = {
    "sample_size": 32, "in_channels": 3, "out_channels": 3,
    "block_out_channels": [128, 256, 256, 256],
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    "layers_per_block": 2, "attention_head_dim": None, "downsample_padding": 0,
    "flip_sin_to_cos": False, "freq_shift": 1, "norm_eps": 1e-6, "norm_num_groups": 32,
}  # fmt: skip
SCHEDULER = {
    "_class_name": "DDPMScheduler", "beta_start": 0.0001, "beta_end": 0.02,
    "beta_schedule": "linear", "num_train_timesteps": 1000, "clip_sample": True,
    "variance_type": "fixed_large",
}  # fmt: skip


def timed(fn, repeats: int, device: torch.device) -> float:
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def autocast(device: torch.device, enabled: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def matmul_gflops(device: torch.device, dtype: torch.dtype, repeats: int) -> float:
    a = torch.randn(2048, 2048, device=device, dtype=dtype)
    seconds = timed(lambda: a @ a, repeats, device)
    return 2 * 2048**3 / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    reference = UNet2DModel(**CIFAR10).eval().to(device)
    with tempfile.TemporaryDirectory() as tmp:
        reference.save_pretrained(tmp, safe_serialization=True)
        (Path(tmp) / "scheduler_config.json").write_text(json.dumps(SCHEDULER))
        model = zoo_core.load("ddpm-cifar10", weights=tmp, device=device)
    x = torch.randn(8, 3, 32, 32, device=device)
    t = torch.full((8,), 500, device=device)
    rows = []

    @torch.no_grad()
    def ours(bf16: bool):
        with autocast(device, bf16):
            model.unet(x, t)

    @torch.no_grad()
    def theirs():
        reference(x, t)

    ref_fwd = timed(theirs, args.repeats, device)
    fwd32 = timed(lambda: ours(False), args.repeats, device)
    fwd16 = timed(lambda: ours(True), args.repeats, device)
    rows.append(("UNet forward, batch 8, fp32", fwd32, "diffusers fp32", ref_fwd))
    rows.append(("UNet forward, batch 8, bf16 autocast", fwd16, "diffusers fp32", ref_fwd))

    x_T = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)

    @torch.no_grad()
    def diffusers_ddim(bf16: bool):
        scheduler = DDIMScheduler.from_config(SCHEDULER)
        scheduler.set_timesteps(50)
        sample = x_T.clone()
        for step in scheduler.timesteps:
            with autocast(device, bf16):
                eps = reference(sample, step).sample.float()
            sample = scheduler.step(eps, step, sample).prev_sample
        return sample

    for bf16 in (False, True):
        name = "bf16" if bf16 else "fp32"
        zoo_time = timed(lambda b=bf16: model.sample(8, seed=0, steps=50, x_T=x_T.cpu(),
                                                     precision="bf16" if b else "fp32"),
                         1, device)  # fmt: skip
        ref_time = timed(lambda b=bf16: diffusers_ddim(b), 1, device)
        rows.append((f"DDIM-50, 8 images, {name}", zoo_time, f"diffusers loop {name}", ref_time))

    print(f"device {device}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}")
    print(f"{'measure':40} {'zoo (s)':>9}  {'reference':22} {'ref (s)':>8} {'ratio':>6}")
    for name, ours_s, ref_name, ref_s in rows:
        print(f"{name:40} {ours_s:9.3f}  {ref_name:22} {ref_s:8.3f} {ours_s / ref_s:6.2f}")

    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.unet(x, t)
    flops = counter.get_total_flops()
    fashion_throughput(device)
    for name, dtype, seconds in (("fp32", torch.float32, fwd32), ("bf16", torch.bfloat16, fwd16)):
        peak = matmul_gflops(device, dtype, args.repeats)
        achieved = flops / seconds / 1e9
        share = achieved / peak
        print(f"UNet {name}: {flops / 1e9:.1f} GFLOP per batch of 8, {achieved:.0f} GFLOP/s "
              f"achieved; a 2048^3 matmul runs {peak:.0f} GFLOP/s ({share:.0%})")  # fmt: skip


def fashion_throughput(device: torch.device) -> None:
    import resource

    model = zoo_core.load("ddpm-fashion", device=device)
    print(f"{'ddpm-fashion, 64 images':40} {'images/s':>9} {'peak memory':>12}")
    for sampler, steps in (("ddpm", 1000), ("ddim", 50), ("dpm-solver++", 20),
                           ("dpm-solver++", 10)):  # fmt: skip
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        model.sample(64, seed=0, sampler=sampler, steps=steps, batch_size=64)
        rate = 64 / (time.perf_counter() - start)
        if device.type == "cuda":
            peak = f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB GPU"
        else:
            peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB RSS"
        print(f"{sampler + ' ' + str(steps) + ' steps':40} {rate:9.2f} {peak:>12}")


if __name__ == "__main__":
    main()

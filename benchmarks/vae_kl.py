"""Decode speed of autoencoder-kl against diffusers' AutoencoderKL (the sd-vae-ft-mse
configuration, Rombach et al. 2022, arXiv 2112.10752).

Both models hold the same random weights (diffusers' initialisation, converted through
``zoo_vae.autoencoder_kl.state_dict_from_diffusers``) and decode the same latents: those of
256x256 images, ``(batch, 4, 32, 32)``. Each configuration is timed ``--repeats`` times after a
warm-up, the configurations interleaved so that a background load touches them alike; the
table gives the median and the speed ratio ours / diffusers'. bf16 is timed beside fp32
(ours, and diffusers' where it runs).

    python benchmarks/vae_kl.py [--threads 1] [--repeats 5] [--batch 1]

A script, not a test: it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import diffusers
import torch
from diffusers import AutoencoderKL as DiffusersAutoencoderKL
from machine import cpu_name  # benchmarks/machine.py
from zoo_vae.autoencoder_kl import AutoencoderKL, config_from_diffusers, state_dict_from_diffusers

SD_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 256,
    "scaling_factor": 0.18215,
}


def models() -> tuple[DiffusersAutoencoderKL, AutoencoderKL]:
    torch.manual_seed(0)
    reference = DiffusersAutoencoderKL(**SD_VAE).eval()
    config = config_from_diffusers(dict(reference.config))
    ours = AutoencoderKL(config)
    ours.load_state_dict(state_dict_from_diffusers(reference.state_dict(), config))
    return reference, ours.eval()


def timed(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each call, the calls interleaved; one untimed warm-up each."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    with torch.no_grad():
        for call in calls.values():
            call()
        for _ in range(repeats):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each")
    parser.add_argument("--batch", type=int, default=1, help="latents per decode")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    diffusers.utils.logging.set_verbosity_error()  # its advice on casting with .to(bf16)

    reference, ours = models()
    z = torch.randn(args.batch, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs = ((reference.decode(z).sample + 1) / 2).clamp(0, 1)
        gap = (ours.decode(z) - theirs).abs().max().item()
    reference_bf16 = copy.deepcopy(reference).to(torch.bfloat16)
    ours_bf16 = copy.deepcopy(ours).to(torch.bfloat16)
    calls = {
        "diffusers fp32": lambda: reference.decode(z),
        "ours fp32": lambda: ours.decode(z),
        "ours bf16": lambda: ours_bf16.decode(z),
    }
    try:
        with torch.no_grad():
            reference_bf16.decode(z.bfloat16())
        calls["diffusers bf16"] = lambda: reference_bf16.decode(z.bfloat16())
    except RuntimeError as exc:  # an op without a bf16 kernel on this device
        print(f"diffusers bf16 does not run here: {exc}")
    seconds = timed(calls, args.repeats)

    print(
        f"Decode of {args.batch}x4x32x32 latents (256x256 images), sd-vae-ft-mse configuration, "
        f"random weights; CPU {cpu_name()}, "
        f"{args.threads} thread(s), torch {torch.__version__}; median of {args.repeats}. "
        f"Largest |ours - diffusers| in fp32: {gap:.1e}.\n"
    )
    print("| implementation | dtype | median s | speed vs diffusers, same dtype | over own fp32 |")
    print("|---|---|---:|---:|---:|")
    for name, value in seconds.items():
        who, dtype = name.split()
        versus = seconds.get(f"diffusers {dtype}")
        ratio = f"{versus / value:.2f}x" if versus is not None else "n/a"
        own = seconds[f"{who} fp32"] / value
        print(f"| {who} | {dtype} | {value:.3f} | {ratio} | {own:.2f}x |")


if __name__ == "__main__":
    main()

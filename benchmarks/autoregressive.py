"""Speed of the autoregressive models (zoo-autoregressive), one section per architecture.

``--section gpt``: GPT-2 124M (the ``gpt2`` configuration of Radford et al. 2019, random
weights: the real ones are not reachable offline) generating greedily at batch 1 on the CPU,
zoo's ``gpt`` against transformers' ``GPT2LMHeadModel.generate``, in float32 and bfloat16, with
the same weights (converted through ``zoo_autoregressive.gpt.state_dict_from_transformers``).
At batch 1 each new token reads every weight once, so the floor of a step is the bytes of the
weights it reads over the machine's memory bandwidth (measured here as the read rate of a
1 GB sum at the same thread count); the table says how close each implementation comes. The
prompt-processing time is that of a 256-token prompt (``generate`` of one token). Each call is
timed ``--repeats`` times after a warm-up, the implementations interleaved so that a
background load touches them alike; the table gives medians.

    python benchmarks/autoregressive.py --section gpt [--threads N] [--repeats 3] [--tokens 128]

``--section wavenet``: WaveNet's fast (queued) generation against the naive one at receptive
fields of about 256, 1024 and 4096 samples (target: 20x at 1024). ``--section forecast``:
``wavenet-sunspots`` forecasting the held-out years against the seasonal-naive forecast.
``--section pixelcnn``: ``pixelcnn-fashion`` (or ``--weights DIR``) sampling images/s and
its exact bits/dim on the Fashion-MNIST test split, beside the published CIFAR-10 figures.

The default thread count is every core; on a machine shared with other jobs, one thread gives
steadier numbers (a descheduled OpenMP thread stalls the others). A script, not a test: it
prints Markdown tables.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import time
from collections.abc import Callable

import torch
from machine import cpu_name  # benchmarks/machine.py


def timed(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each call, the calls interleaved; one untimed warm-up each."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def read_bandwidth(repeats: int = 5, size: int = 1 << 30) -> float:
    """Bytes per second of a streaming read (a sum over ``size`` bytes of float32)."""
    data = torch.randn(size // 4)
    seconds = timed({"sum": lambda: data.sum()}, repeats)["sum"]
    return size / seconds


# ------------------------------------------------------------------------------------- gpt
def gpt_models():
    """transformers' GPT-2 124M with random weights, and zoo's gpt holding the same ones."""
    from transformers import GPT2Config, GPT2LMHeadModel
    from zoo_autoregressive.gpt import GPT, config_from_transformers, state_dict_from_transformers
    from zoo_autoregressive.tokenizer import CharTokenizerConfig

    torch.manual_seed(0)
    reference = GPT2LMHeadModel(GPT2Config()).eval()
    # the tokenizer plays no part in token-level generation: a stand-in
    tokenizer = CharTokenizerConfig(kind="char", characters="ab")
    config = config_from_transformers(reference.config.to_dict(), tokenizer)
    ours = GPT(config)
    ours.load_state_dict(state_dict_from_transformers(reference.state_dict(), config))
    return reference, ours.eval()


def gemvs(model) -> Callable[[], None]:
    """The matrix-vector products of one batch-1 step alone, in the model's dtype and
    weight layout: what a step costs with no other work."""
    weights = [(m.weight, m.bias) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    weights.append((model.wte.weight, None))
    inputs = {w.shape[1]: torch.randn(1, w.shape[1], dtype=w.dtype) for w, _ in weights}

    def call() -> None:
        with torch.inference_mode():
            for weight, bias in weights:
                torch.nn.functional.linear(inputs[weight.shape[1]], weight, bias)

    return call


def gpt_section(args: argparse.Namespace) -> None:
    from zoo_autoregressive.gpt import GPT

    reference, ours = gpt_models()
    prompt = torch.randint(0, 50257, (1, 16), generator=torch.Generator().manual_seed(1))
    long_prompt = torch.randint(0, 50257, (1, 256), generator=torch.Generator().manual_seed(2))
    steps = args.tokens

    def zoo(model: GPT, ids: torch.Tensor, new: int) -> Callable[[], list[list[int]]]:
        return lambda: model.generate(ids, max_new_tokens=new, temperature=0, stop_at_eos=False)

    def hf(model, ids: torch.Tensor, new: int) -> Callable[[], torch.Tensor]:
        def call() -> torch.Tensor:
            with torch.inference_mode():
                out = model.generate(
                    ids, max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0
                )
            return out[0, ids.shape[1] :]

        return call

    same = zoo(ours, prompt, steps)()[0] == hf(reference, prompt, steps)().tolist()
    reference_bf16 = copy.deepcopy(reference).to(torch.bfloat16)
    ours_bf16 = GPT(ours.config)
    ours_bf16.load_state_dict(ours.state_dict())
    ours_bf16 = ours_bf16.to(torch.bfloat16).eval()
    models = {
        "zoo fp32": (zoo, ours),
        "transformers fp32": (hf, reference),
        "zoo bf16": (zoo, ours_bf16),
        "transformers bf16": (hf, reference_bf16),
    }
    generation = timed({k: f(m, prompt, steps) for k, (f, m) in models.items()}, args.repeats)
    gemv = timed({"fp32": gemvs(ours), "bf16": gemvs(ours_bf16)}, args.repeats)
    prefill = timed({k: f(m, long_prompt, 1) for k, (f, m) in models.items()}, args.repeats)
    bandwidth = read_bandwidth()
    # Bytes read per new token: every weight but the position table, of which one row is read.
    weights = sum(p.numel() for p in ours.parameters()) - ours.wpe.weight.numel()

    print(
        f"GPT-2 124M (gpt2 configuration, random weights), greedy generation of {steps} tokens "
        f"after a 16-token prompt, batch 1; CPU {cpu_name()}, {args.threads} thread(s), "
        f"torch {torch.__version__}; median of {args.repeats}. Read bandwidth "
        f"{bandwidth / 1e9:.1f} GB/s (a 1 GB sum). zoo's fp32 tokens "
        f"{'equal' if same else 'DIFFER FROM'} transformers' greedy tokens.\n"
    )
    print(
        "| implementation | dtype | ms / token | tokens / s | speed vs transformers, same dtype "
        "| vs transformers fp32 | floor ms / token | floor / time | GEMVs alone ms | "
        "256-token prompt ms |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, seconds in generation.items():
        who, dtype = name.split()
        per_token = seconds / steps
        versus = generation[f"transformers {dtype}"] / seconds
        versus_fp32 = generation["transformers fp32"] / seconds
        floor = weights * (4 if dtype == "fp32" else 2) / bandwidth
        alone = f"{gemv[dtype] * 1e3:.1f}" if who == "zoo" else "–"
        print(
            f"| {who} | {dtype} | {per_token * 1e3:.1f} | {1 / per_token:.1f} | {versus:.2f}x | "
            f"{versus_fp32:.2f}x | {floor * 1e3:.1f} | {floor / per_token:.0%} | "
            f"{alone} | {prefill[name] * 1e3:.0f} |"
        )
    print(
        "\nfloor: the bytes of the weights a step reads over the read bandwidth; GEMVs alone: "
        "the matrix-vector products of one step with zoo's weights (dtype and layout), nothing "
        "else: the least a step costs with torch's kernels."
    )


def wavenet_section(args: argparse.Namespace) -> None:
    """Fast (queued) against naive generation at receptive fields of about 256, 1024 and
    4096 samples: one μ-law clip, 32 residual and gate channels, the steady state (the naive
    path recomputes the network over a full receptive field of context for each sample)."""
    from zoo_autoregressive.wavenet import FastState, WaveNet

    from zoo_core.seeding import Noise

    print(f"\n## wavenet generation (cpu, {args.threads} threads): fast vs naive, batch 1")
    print("| layers | receptive field | fast samples/s | naive samples/s | speed-up |")
    print("|---|---|---|---|---|")
    for layers in (8, 10, 12):
        torch.manual_seed(0)
        model = WaveNet.from_config({"layers": layers, "residual_channels": 32,
                                     "gate_channels": 32, "skip_channels": 64}).eval()  # fmt: skip
        rf = model.receptive_field
        context = torch.randint(0, 256, (1, rf))
        noise = Noise.for_range(0, 0, 1)
        with torch.inference_mode():
            state = FastState(model, 1, None)
            previous = None
            for t in range(rf):  # prime the queues (not timed)
                state.step(previous)
                previous = context[:, t]
            steps = 512
            began = time.perf_counter()
            for t in range(steps):
                previous = model.draw(state.step(previous), noise, t, 1.0)
            fast = steps / (time.perf_counter() - began)
            naive_steps = max(4, 2**17 // rf)
            began = time.perf_counter()
            model.generate(noise, naive_steps, None, 1.0, False, context)
            naive = naive_steps / (time.perf_counter() - began)
        print(f"| {layers} | {rf} | {fast:,.0f} | {naive:,.1f} | {fast / naive:,.0f}x |")


def forecast_section(args: argparse.Namespace) -> None:
    """``wavenet-sunspots`` forecasting the held-out years 1979-2008 from 1700-1978: 500
    sample paths, against the seasonal-naive forecast (each year's value from one solar
    cycle, 11 years, before; the last observed cycle repeated)."""
    import zoo_core
    from zoo_core.data import load_dataset

    model = zoo_core.load("wavenet-sunspots")
    train = load_dataset("sunspots", "train").x[0]  # (T, 1)
    test = load_dataset("sunspots", "test").x[0]
    horizon = test.shape[0]
    began = time.perf_counter()
    paths = model.forecast(train, horizon, n_paths=500, seed=0)  # (P, H, 1)
    wall = time.perf_counter() - began
    median = paths.median(0).values
    spread = 0.5 * (paths[:, None] - paths[None]).abs().mean((0, 1))
    crps = ((paths - test[None]).abs().mean(0) - spread).mean()  # the energy form of CRPS
    season = 11
    naive = torch.stack([train[-season + h % season] for h in range(horizon)])
    inside = ((paths.quantile(0.05, 0) <= test) & (test <= paths.quantile(0.95, 0))).float()
    print(f"\n## wavenet-sunspots: forecasting 1979-2008 from 1700-1978 ({wall:.1f} s)")
    print("| forecast | MAE (sunspots) | CRPS | 90% interval coverage |\n|---|---|---|---|")
    print(f"| wavenet-sunspots, median of 500 paths | {(median - test).abs().mean():.1f} | "
          f"{crps:.1f} | {inside.mean():.0%} |")  # fmt: skip
    print(f"| seasonal naive (11 years) | {(naive - test).abs().mean():.1f} | "
          f"{(naive - test).abs().mean():.1f} | |")  # fmt: skip


def pixelcnn_section(args: argparse.Namespace) -> None:
    """``pixelcnn-fashion`` (or the model saved in ``--weights``): sampling images/s at batch
    64 and the exact bits/dim on the Fashion-MNIST test split, beside the published Gated
    PixelCNN and PixelCNN++ figures on CIFAR-10 for scale (a different dataset: the scale of
    the numbers, not a comparison)."""
    import zoo_core
    from zoo_core.data import load_dataset
    from zoo_core.generator import Generator

    model = (Generator.from_pretrained(args.weights) if args.weights
             else zoo_core.load("pixelcnn-fashion"))  # fmt: skip
    test = load_dataset("fashion-mnist", "test")
    n = min(args.images, len(test))
    x, y = test.x[:n], test.y[:n]
    conditional = "conditional" in model.capabilities
    began = time.perf_counter()
    logp = torch.cat([
        model.log_prob(x[i : i + 500], **({"labels": y[i : i + 500]} if conditional else {}))
        for i in range(0, n, 500)
    ])  # fmt: skip
    scoring = time.perf_counter() - began
    bpd = -logp.double() / (784 * math.log(2))
    began = time.perf_counter()
    model.sample(64, seed=0, batch_size=64)
    rate = 64 / (time.perf_counter() - began)
    label = "with its class" if conditional else "unconditional"
    print(f"\n## pixelcnn ({args.threads} threads)")
    print("| model | data | bits/dim | images/s sampled (batch 64) |\n|---|---|---|---|")
    print(f"| {model.name} ({label}) | Fashion-MNIST test, {n} images ({scoring:.0f} s) | "
          f"{bpd.mean():.4f} ± {bpd.std() / math.sqrt(n):.4f} | {rate:.1f} |")  # fmt: skip
    print("| Gated PixelCNN (van den Oord et al. 2016) | CIFAR-10 test | 3.03 | |")
    print("| PixelCNN++ (Salimans et al. 2017) | CIFAR-10 test | 2.92 | |")


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "pixelcnn": pixelcnn_section,
    "gpt": gpt_section,
    "wavenet": wavenet_section,
    "forecast": forecast_section,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=sorted(SECTIONS), required=True, help="what to time")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (all cores)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each")
    parser.add_argument("--tokens", type=int, default=128, help="gpt: new tokens per generation")
    parser.add_argument("--images", type=int, default=10000, help="pixelcnn: test images scored")
    parser.add_argument("--weights", default=None, help="pixelcnn: a save_pretrained folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    SECTIONS[args.section](args)


if __name__ == "__main__":
    main()

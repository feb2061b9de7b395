"""The evaluation harness's metrics against their reference libraries, measured in the same run.

    .venv/bin/python benchmarks/evaluation.py [--repeats 3] [--threads N] [--sections frechet ...]

Rows (time of each side, best of ``--repeats`` alternating runs; ratio = reference / zoo,
above 1 is faster; and how far apart the two values are, the largest of several):
- ``frechet``: ``frechet_distance`` against pytorch-fid's ``calculate_frechet_distance``
  (scipy ``sqrtm``) at 2048 dimensions, on statistics of 5000 samples per set (full rank)
  and of 1000 (singular covariances);
- ``kid``: ``kernel_inception_distance`` against torch-fidelity's ``kid_features_to_metric``
  (same seed, so the same subsets), 10 subsets of 1000 from 5000 x 2048 features, float64;
- ``prdc``: ``precision_recall`` + ``density_coverage`` against ``prdc.compute_prdc``,
  5000 x 2048 features per set, k=5. prdc's one call gives all four from three full
  distance matrices; our two calls compute those three passes each (blocked, never a full
  matrix), so expect a ratio near 0.5 on the CPU.
On a machine shared with other jobs, ``--threads 1`` keeps the BLAS threads of LAPACK's
eigen-solvers (ours and scipy's ``sqrtm`` alike) from spinning against them: there, with 2
threads, the same call took anywhere from 0.6 s to 42 s.
- ``extractors``: feature-extraction throughput (seconds per image, preprocessing included)
  of ``fashion-net``, ``inception-fid`` (against pytorch-fid's network with the same
  weights) and DINOv2 ViT-L/14 at 224 through ``timm:``.
The full ``fashion-fid-10k`` run of ``ddpm-fashion`` is ``zoo eval ddpm-fashion --protocol
fashion-fid-10k``; ``benchmarks/diffusion_quality.py`` runs it per sampler.
Each section is a function returning rows; a new section is one more function in
``SECTIONS``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
from typing import NamedTuple

import numpy as np
import scipy
import scipy.linalg  # loads its BLAS now, so that --threads limits it too
import torch

from zoo_core.evaluation.frechet import feature_statistics, frechet_distance
from zoo_core.evaluation.metrics import (
    density_coverage,
    kernel_inception_distance,
    precision_recall,
)


class Row(NamedTuple):
    measure: str
    zoo_s: float
    reference: str
    ref_s: float
    abs_diff: float  # |zoo value - reference value| (the largest, for several values)
    rel_diff: float  # abs_diff / |reference value|


def compare(measure: str, ours, reference: str, theirs, repeats: int) -> Row:
    """Best wall time of each callable over ``repeats`` alternating calls (so that load from
    elsewhere hits both alike); their values are floats or equally long tuples of floats."""
    ours_s = ref_s = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a = ours()
        middle = time.perf_counter()
        b = theirs()
        ours_s, ref_s = min(ours_s, middle - start), min(ref_s, time.perf_counter() - middle)
    a, b = np.atleast_1d(np.asarray(a, dtype=float)), np.atleast_1d(np.asarray(b, dtype=float))
    diff = np.abs(a - b)
    worst = int(diff.argmax())
    rel = diff[worst] / abs(b[worst]) if b[worst] else float(diff[worst] > 0) * np.inf
    return Row(measure, ours_s, reference, ref_s, float(diff[worst]), float(rel))


def quiet(fn):
    """``fn`` with its stdout swallowed (pytorch-fid and prdc print)."""

    def call():
        with contextlib.redirect_stdout(io.StringIO()):
            return fn()

    return call


def correlated_features(seed: int, n: int, d: int, shift: float = 0.1, mixing: int = 0):
    """``(n, d)`` non-negative, correlated features with a decaying spectrum, like pooled
    ReLU activations; one distribution per ``mixing`` seed."""
    rng = np.random.default_rng(mixing)
    a = rng.standard_normal((d, d)) / np.sqrt(d) * (np.arange(1, d + 1) ** -0.5)[:, None]
    z = np.random.default_rng(seed).standard_normal((n, d))
    return np.maximum(z @ a + shift, 0.0)


def frechet_rows(repeats: int) -> list[Row]:
    return [frechet_row(n, repeats) for n in (5000, 1000)]


def frechet_row(n: int, repeats: int) -> Row:
    from pytorch_fid.fid_score import calculate_frechet_distance

    s1 = feature_statistics(correlated_features(1, n, 2048, 0.10, mixing=1))
    s2 = feature_statistics(correlated_features(2, n, 2048, 0.12, mixing=2))
    return compare(
        f"Fréchet distance 2048-d, {n} samples ({'full rank' if n > 2048 else 'singular'})",
        lambda: frechet_distance(*s1, *s2),
        "pytorch-fid (sqrtm)",
        quiet(lambda: calculate_frechet_distance(*s1, *s2)),
        repeats,
    )


def kid_rows(repeats: int) -> list[Row]:
    from torch_fidelity.metric_kid import kid_features_to_metric

    real = correlated_features(3, 5000, 2048, 0.10)
    fake = correlated_features(4, 5000, 2048, 0.12)

    def theirs():
        out = kid_features_to_metric(
            torch.from_numpy(real),
            torch.from_numpy(fake),
            kid_subsets=10,
            kid_subset_size=1000,
            rng_seed=0,
            verbose=False,
        )
        return out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"]

    def ours():
        return kernel_inception_distance(real, fake, subsets=10, subset_size=1000, seed=0)

    return [
        compare("KID 10 x 1000 of 5000 x 2048 (mean, std)", ours, "torch-fidelity", theirs, repeats)
    ]


def prdc_rows(repeats: int) -> list[Row]:
    from prdc import compute_prdc

    real = correlated_features(5, 5000, 2048, 0.10)
    fake = correlated_features(6, 5000, 2048, 0.12)

    def theirs():
        out = compute_prdc(real, fake, nearest_k=5)
        return out["precision"], out["recall"], out["density"], out["coverage"]

    def ours():
        return (*precision_recall(real, fake, k=5), *density_coverage(real, fake, k=5))

    return [
        compare(
            "precision_recall + density_coverage 5000 x 2048",
            ours,
            "prdc.compute_prdc",
            quiet(theirs),
            repeats,
        )
    ]


def extractor_rows(repeats: int) -> list[Row]:
    """Feature-extraction throughput, preprocessing included, on 8-bit images of the size
    each protocol feeds: ``fashion-net`` (the bundled weights) on 28x28 Fashion-MNIST-sized
    images, ``inception-fid`` on 32x32 CIFAR-sized images resized to 299 (against
    pytorch-fid's ``InceptionV3`` on the same input), and DINOv2 ViT-L/14 at 224 through
    ``timm:`` (bicubic). The Inception and ViT weights are random (the real files are not on
    this machine; speed does not depend on them). The time columns are milliseconds per image;
    ``abs diff`` is the largest feature difference where there is a reference."""
    import timm

    from zoo_core.builtin.extractors.inception import InceptionFID
    from zoo_core.builtin.extractors.timm_extractor import TimmExtractor
    from zoo_core.evaluation.extractors import get_extractor
    from zoo_core.extractor import preprocess

    rows = []
    generator = torch.Generator().manual_seed(0)

    def images(n: int, channels: int, size: int) -> torch.Tensor:
        return torch.randint(0, 256, (n, channels, size, size), generator=generator) / 255.0

    def per_image(extractor, x: torch.Tensor, resize: str):
        @torch.no_grad()
        def run():
            return extractor(preprocess(x, extractor, resize))["features"]

        return run

    fashion = get_extractor("fashion-net")
    x = images(1000, 1, 28)
    seconds = _best(per_image(fashion, x, "none"), repeats) / len(x) * 1e3
    rows.append(Row("fashion-net, 1000 28x28 images (ms/image)", seconds, "-", float("nan"),
                    float("nan"), float("nan")))  # fmt: skip

    torch.manual_seed(0)
    ours = InceptionFID().eval()
    reference = _pytorch_fid_network(ours)
    x = images(50, 3, 32)

    @torch.no_grad()
    def pytorch_fid():
        return reference(x)[0].flatten(1)

    ours_run = per_image(ours, x, "bilinear")
    ours_s = _best(ours_run, repeats) / len(x) * 1e3
    ref_s = _best(pytorch_fid, repeats) / len(x) * 1e3
    diff = (ours_run() - pytorch_fid()).abs().max().item()
    rows.append(Row("inception-fid, 50 32x32 -> 299 (ms/image)", ours_s,
                    "pytorch-fid InceptionV3", ref_s, diff, float("nan")))  # fmt: skip

    vit = timm.create_model("vit_large_patch14_dinov2", pretrained=False, num_classes=0,
                            img_size=224).eval()  # fmt: skip
    dinov2 = TimmExtractor(vit, "vit_large_patch14_dinov2@224", "0" * 64, (224, 224),
                           (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # fmt: skip
    x = images(8, 3, 32)
    seconds = _best(per_image(dinov2, x, "bicubic"), repeats) / len(x) * 1e3
    rows.append(Row("DINOv2 ViT-L/14 @224, 8 images (ms/image)", seconds, "-",
                    float("nan"), float("nan"), float("nan")))  # fmt: skip
    return rows


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _pytorch_fid_network(ours):
    """pytorch-fid's ``InceptionV3`` (its FID blocks) holding the weights of ``ours``."""
    import pytorch_fid.inception as pf

    state = ours.state_dict()
    original = pf.load_state_dict_from_url
    pf.load_state_dict_from_url = lambda *args, **kwargs: state
    try:
        return pf.InceptionV3([3], resize_input=True, normalize_input=True).eval()
    finally:
        pf.load_state_dict_from_url = original


SECTIONS = {
    "frechet": frechet_rows,
    "kid": kid_rows,
    "prdc": prdc_rows,
    "extractors": extractor_rows,
}


def print_table(rows: list[Row]) -> None:
    print(
        f"{'measure':50} {'zoo (s)':>8}  {'reference':20} {'ref (s)':>8} {'ratio':>6} "
        f"{'abs diff':>9} {'rel diff':>9}"
    )
    for r in rows:
        print(
            f"{r.measure:50} {r.zoo_s:8.3f}  {r.reference:20} {r.ref_s:8.3f} "
            f"{r.ref_s / r.zoo_s:6.1f} {r.abs_diff:9.2e} {r.rel_diff:9.2e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    args = parser.parse_args()
    limits = contextlib.nullcontext()
    if args.threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        limits = threadpool_limits(args.threads)
    with limits:
        rows = [row for name in args.sections for row in SECTIONS[name](args.repeats)]
    print(
        f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}, numpy "
        f"{np.__version__}, scipy {scipy.__version__}, best of {args.repeats}"
    )
    print_table(rows)


if __name__ == "__main__":
    main()

"""The sample-quality metrics of the evaluation harness, as pure functions on features:

- :func:`kernel_inception_distance`: KID (Bińkowski et al. 2018, "Demystifying MMD GANs",
  arXiv 1801.01401), as torch-fidelity computes it;
- :func:`inception_score`: IS (Salimans et al. 2016, "Improved Techniques for Training
  GANs", arXiv 1606.03498), as torch-fidelity computes it;
- :func:`precision_recall`: improved precision and recall (Kynkäänniemi et al. 2019,
  "Improved Precision and Recall Metric for Assessing Generative Models", arXiv
  1904.06991), as the ``prdc`` package computes them;
- :func:`density_coverage`: density and coverage (Naeem et al. 2020, "Reliable Fidelity
  and Diversity Metrics for Generative Models", arXiv 2002.09797), as ``prdc`` does;
- :func:`mixture_modes`: modes captured, high-quality share and reverse KL on the 2-D
  Gaussian mixtures (VEEGAN, arXiv 1705.07761; PacGAN, arXiv 1712.04086).

Features are numpy arrays or torch tensors; the work runs in float64 on the tensor's device
(CPU for numpy) and the results are Python numbers. Pairwise distances are computed in row
blocks of at most 256 MiB, so 50000 x 50000 distance matrices are never held at once.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from zoo_core.errors import ConfigError, TooFewSamplesError

__all__ = [
    "density_coverage",
    "inception_score",
    "kernel_inception_distance",
    "mixture_modes",
    "precision_recall",
]

_BLOCK_BYTES = 1 << 28  # a float64 block of pairwise values: 256 MiB at most


def kernel_inception_distance(
    real,
    fake,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: the unbiased estimate of the squared MMD with the polynomial kernel
    ``k(x, y) = (gamma x.y + coef0)^degree``, by default ``(x.y / D + 1)^3`` as in
    Bińkowski et al. 2018, averaged over random subsets.

    Each of ``subsets`` rounds draws ``subset_size`` rows of each set without replacement
    and computes the unbiased ``MMD^2_u`` (Gretton et al. 2012, "A Kernel Two-Sample
    Test", JMLR, Lemma 6), with ``m = subset_size``:

        ``sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1))
        - 2 sum_{i, j} k(x_i, y_j) / m^2``.

    The subsets are drawn exactly as torch-fidelity draws them (``np.random.RandomState(
    seed)``, per round ``choice(len(real))`` then ``choice(len(fake))``), so ``seed=2020``
    (torch-fidelity's default ``rng_seed``) reproduces its ``kid_features_to_metric``.

    Args:
        real, fake: ``(N, D)`` and ``(M, D)`` features.
        subsets: number of rounds.
        subset_size: rows per set and round; at most ``min(N, M)``.
        degree, gamma, coef0: the polynomial kernel.
        seed: seed of the subset draws; equal seeds draw equal subsets.

    Returns:
        ``(mean, std)`` over the rounds, ``std`` with ``ddof=0`` (as torch-fidelity and
        torchmetrics). The mean can be slightly negative when the sets are alike.
    """
    x, y = _features(real, "real"), _features(fake, "fake")
    _same_dim(x, y)
    if subsets < 1 or subset_size < 2:
        raise ConfigError(
            f"KID needs subsets >= 1 and subset_size >= 2, got {subsets}, {subset_size}"
        )
    if subset_size > min(len(x), len(y)):
        raise TooFewSamplesError(
            f"KID subset_size {subset_size} exceeds the number of samples (real {len(x)}, "
            f"fake {len(y)}); pass a smaller subset_size or generate more samples"
        )
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    rng = np.random.RandomState(seed)  # torch-fidelity's draws; a frozen numpy stream

    def kernel_sum(a, b):  # sum of k(a_i, b_j) over all pairs, in row blocks of a
        rows, total = max(1, _BLOCK_BYTES // (8 * len(b))), 0.0
        for i in range(0, len(a), rows):
            total += ((a[i : i + rows] @ b.T) * gamma + coef0).pow(degree).sum()  # of (B, m)
        return total

    def diagonal_sum(a):  # sum of k(a_i, a_i)
        return ((a * a).sum(1) * gamma + coef0).pow(degree).sum()

    m = subset_size
    mmds = []
    for _ in range(subsets):
        xs = x[torch.from_numpy(rng.choice(len(x), m, replace=False)).to(x.device)]  # (m, D)
        ys = y[torch.from_numpy(rng.choice(len(y), m, replace=False)).to(y.device)]  # (m, D)
        within = (kernel_sum(xs, xs) - diagonal_sum(xs)) + (kernel_sum(ys, ys) - diagonal_sum(ys))
        mmds.append((within / (m * (m - 1)) - 2 * kernel_sum(xs, ys) / (m * m)).item())
    return float(np.mean(mmds)), float(np.std(mmds))


def inception_score(logits, *, splits: int = 10) -> tuple[float, float]:
    """IS: ``exp(E_x KL(p(y|x) || p(y)))`` per split, ``p(y|x) = softmax(logits)`` and
    ``p(y)`` the split's mean of ``p(y|x)`` (Salimans et al. 2016, section 4).

    The splits are consecutive row ranges ``[i N // splits, (i+1) N // splits)``, as in
    torch-fidelity's ``isc_features_to_metric``; the rows are not shuffled (torch-fidelity
    shuffles them with ``rng_seed`` 2020 by default, torchmetrics with an unseeded
    ``torch.randperm``): pass generated samples in the order they were drawn.

    Args:
        logits: ``(N, C)`` classifier logits (the Inception network's 1008 for the standard
            IS), ``N >= splits``.
        splits: number of splits.

    Returns:
        ``(mean, std)`` over the splits, ``std`` with ``ddof=0`` as torch-fidelity and the
        original code (``np.std``); torchmetrics reports ``ddof=1``.
    """
    z = _features(logits, "logits")
    n = len(z)
    if splits < 1 or n < splits:
        raise TooFewSamplesError(
            f"the Inception Score with {splits} splits needs at least {max(splits, 1)} "
            f"samples, got {n}; generate more samples or pass fewer splits"
        )
    log_p = torch.log_softmax(z, dim=1)  # (N, C)
    scores = []
    for i in range(splits):
        chunk = log_p[i * n // splits : (i + 1) * n // splits]  # (n_i, C)
        log_marginal = torch.logsumexp(chunk, dim=0) - math.log(len(chunk))  # (C,) log p(y)
        kl = (chunk.exp() * (chunk - log_marginal)).sum(1)  # (n_i,) KL(p(y|x) || p(y))
        scores.append(kl.mean().exp().item())
    return float(np.mean(scores)), float(np.std(scores))


def precision_recall(real, fake, *, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019, section 2), with the
    k-nearest-neighbour balls of ``prdc.compute_prdc``.

    Each real (fake) point's ball has as radius the distance to its ``k``-th nearest other
    real (fake) point. Precision: the share of fake points inside at least one real ball;
    recall: the share of real points inside at least one fake ball. "Inside" is a strict
    ``<``, as in ``prdc``.

    Args:
        real, fake: ``(N, D)`` and ``(M, D)`` features, ``N, M > k``.
        k: the neighbour whose distance is the radius (the paper's default is 3).

    Returns:
        ``(precision, recall)``, each in ``[0, 1]``.
    """
    counts = _manifold_counts(real, fake, k)
    return counts["precision"], counts["recall"]


def density_coverage(real, fake, *, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020, section 3), as ``prdc.compute_prdc``.

    Density: the number of real ``k``-NN balls each fake point falls in, averaged over the
    fake points and divided by ``k`` (1 when fake matches real; it may exceed 1). Coverage:
    the share of real points whose ball holds at least one fake point.

    Args:
        real, fake: ``(N, D)`` and ``(M, D)`` features, ``N, M > k``.
        k: the neighbour whose distance is the radius (the paper's default is 5).

    Returns:
        ``(density, coverage)``.
    """
    counts = _manifold_counts(real, fake, k)
    return counts["density"], counts["coverage"]


def mixture_modes(points, centers, std: float, *, threshold: float = 3.0) -> dict:
    """The mode-collapse measures on a mixture of isotropic Gaussians of one ``std``
    (``ring8``, ``grid25``), as VEEGAN (Srivastava et al. 2017, arXiv 1705.07761, section
    5.1) defines them and PacGAN (Lin et al. 2018, arXiv 1712.04086, section 5.1, Table 1)
    reports them:

    - a sample is *high quality* when it lies within ``threshold`` (3) standard deviations
      of its nearest mode; strictly closer, as in PacGAN's released ``MetricLogger``
      (``min_dis < dis_thre``);
    - ``modes``: the number of mixture components whose mean is the nearest mode of at least
      one high-quality sample (VEEGAN: "the number of mixture components whose mean is
      nearest to at least one high quality sample"); no minimum count beyond one;
    - ``high_quality``: the share of all samples that are high quality;
    - ``reverse_kl``: ``KL(p_gen || p_true) = sum_k p_k log(p_k K)``, where ``p_k`` is the
      share of the high-quality samples whose nearest mode is ``k`` (the histogram PacGAN's
      code builds, ``detail_of_coverage``, counts only high-quality samples) and
      ``p_true`` is uniform over the ``K`` modes. Empty bins add nothing (``0 log 0 = 0``);
      since ``p_true`` has no empty bin, the divergence is finite: 0 for a uniform
      histogram, ``log K`` for a generator collapsed onto one mode. With no high-quality
      sample at all the histogram does not exist and ``reverse_kl`` is ``inf``.

    PacGAN's protocol draws 2500 samples per trained model and averages over runs.

    Args:
        points: ``(N, D)`` generated samples (``D = 2`` for the toy mixtures).
        centers: ``(K, D)`` mode means.
        std: the modes' standard deviation (``RING8_STD``, ``GRID25_STD``).
        threshold: the high-quality radius in standard deviations.

    Returns:
        ``{"modes": int, "high_quality": float, "reverse_kl": float}``.
    """
    x = _features(points, "points")
    means = _features(centers, "centers").to(x.device)
    _same_dim(means, x, "centers", "points")
    if len(x) == 0:
        raise TooFewSamplesError("mixture_modes got no points; generate samples first")
    if not std > 0:
        raise ConfigError(f"std must be positive, got {std}")
    k = len(means)
    nearest = torch.empty(len(x), dtype=torch.long, device=x.device)  # (N,) mode index
    distance = torch.empty(len(x), dtype=torch.float64, device=x.device)  # (N,) to it
    rows = max(1, _BLOCK_BYTES // (8 * k))
    for i in range(0, len(x), rows):
        exact = torch.cdist(x[i : i + rows], means, compute_mode="donot_use_mm_for_euclid_dist")
        distance[i : i + rows], nearest[i : i + rows] = exact.min(1)  # (B, K) -> (B,)
    good = distance / std < threshold  # (N,)
    counts = torch.bincount(nearest[good], minlength=k).double()  # (K,)
    total = counts.sum().item()
    if total == 0:
        reverse_kl = math.inf
    else:
        p = counts[counts > 0] / total
        reverse_kl = float((p * torch.log(p * k)).sum().clamp(min=0.0))
    return {
        "modes": int((counts > 0).sum()),
        "high_quality": total / len(x),
        "reverse_kl": reverse_kl,
    }


def _manifold_counts(real, fake, k: int) -> dict[str, float]:
    """Precision, recall, density and coverage of ``prdc.compute_prdc``, in one blocked pass
    over the real-fake distances."""
    x, y = _features(real, "real"), _features(fake, "fake")
    _same_dim(x, y)
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    for name, a in (("real", x), ("fake", y)):
        if len(a) <= k:
            raise TooFewSamplesError(
                f"{name} has {len(a)} samples; k-NN balls with k={k} need at least {k + 1}: "
                f"generate more samples or lower k"
            )
    real_radii, fake_radii = _knn_radii(x, k), _knn_radii(y, k)  # (N,), (M,)
    balls_per_fake = torch.zeros(len(y), dtype=torch.float64, device=x.device)  # (M,)
    recalled = torch.zeros(len(x), dtype=torch.bool, device=x.device)  # (N,)
    covered = torch.zeros(len(x), dtype=torch.bool, device=x.device)  # (N,)
    rows = max(1, _BLOCK_BYTES // (8 * len(y)))
    for i in range(0, len(x), rows):
        dist = torch.cdist(x[i : i + rows], y)  # (B, M)
        radii = real_radii[i : i + rows, None]  # (B, 1)
        balls_per_fake += (dist < radii).sum(0)
        recalled[i : i + rows] = (dist < fake_radii[None, :]).any(1)
        covered[i : i + rows] = dist.min(1).values < radii[:, 0]
    return {
        "precision": (balls_per_fake > 0).double().mean().item(),
        "recall": recalled.double().mean().item(),
        "density": (balls_per_fake.mean() / k).item(),
        "coverage": covered.double().mean().item(),
    }


def _knn_radii(a: torch.Tensor, k: int) -> torch.Tensor:
    """``(N,)`` distance of each row to its ``k``-th nearest other row: the ``(k+1)``-th
    smallest distance with itself counted (at 0), as ``prdc``."""
    rows = max(1, _BLOCK_BYTES // (8 * len(a)))
    radii = []
    for i in range(0, len(a), rows):
        dist = torch.cdist(a[i : i + rows], a)  # (B, N)
        radii.append(dist.topk(k + 1, dim=1, largest=False).values[:, -1])  # (B,)
    return torch.cat(radii)


def _features(value, name: str) -> torch.Tensor:
    """``value`` as a 2-D float64 tensor (on its device); errors name it."""
    t = torch.as_tensor(value)
    if t.ndim != 2:
        raise ConfigError(f"{name} must be a 2-D (samples, dims) array, got shape {tuple(t.shape)}")
    t = t.to(torch.float64)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} holds NaN or infinite values; check how it was computed")
    return t


def _same_dim(a: torch.Tensor, b: torch.Tensor, name_a="real", name_b="fake") -> None:
    if a.shape[1] != b.shape[1]:
        raise ConfigError(
            f"{name_a} and {name_b} have different feature sizes ({a.shape[1]} vs "
            f"{b.shape[1]}); compute both with the same extractor"
        )

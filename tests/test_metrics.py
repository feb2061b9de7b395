"""The metric functions of the evaluation harness against their reference implementations
(pytorch-fid, torch-fidelity, torchmetrics, prdc) on the same features, and against closed
forms."""

from __future__ import annotations

import contextlib
import io
import math
import warnings

import numpy as np
import pytest
import torch

from zoo_core.data.toy import GRID25_CENTERS, GRID25_STD, RING8_CENTERS, RING8_STD, mixture
from zoo_core.errors import ConfigError, TooFewSamplesError
from zoo_core.evaluation import frechet, metrics
from zoo_core.evaluation.frechet import feature_statistics, frechet_distance
from zoo_core.evaluation.metrics import (
    density_coverage,
    inception_score,
    kernel_inception_distance,
    mixture_modes,
    precision_recall,
)


def correlated_features(
    seed: int, n: int, d: int, shift: float = 0.1, mixing: int | None = None
) -> np.ndarray:
    """``(n, d)`` non-negative, correlated features with a decaying spectrum, like pooled
    ReLU activations; one distribution per ``mixing`` seed (default: ``seed``)."""
    rng = np.random.default_rng(seed if mixing is None else mixing)
    a = rng.standard_normal((d, d)) / np.sqrt(d) * (np.arange(1, d + 1) ** -0.5)[:, None]
    z = np.random.default_rng(seed).standard_normal((n, d))
    return np.maximum(z @ a + shift, 0.0)


def pytorch_fid(mu1, sigma1, mu2, sigma2) -> float:
    from pytorch_fid.fid_score import calculate_frechet_distance

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its sqrtm(disp=False)
        return float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))


def exact_frechet(x1: np.ndarray, x2: np.ndarray) -> float:
    """The Fréchet distance of two sample sets' statistics, exactly (to float64 rounding)
    when either set has fewer samples than dimensions: with ``S1 = A^T A`` and
    ``S2 = B^T B``, ``tr sqrt(S1 S2)`` is the nuclear norm of ``A B^T``."""
    a = (x1 - x1.mean(0)) / np.sqrt(len(x1) - 1)  # (n1, D)
    b = (x2 - x2.mean(0)) / np.sqrt(len(x2) - 1)  # (n2, D)
    nuclear = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    diff = x1.mean(0) - x2.mean(0)
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2 * nuclear)


# --- feature_statistics -------------------------------------------------------------------


@pytest.mark.parametrize("as_tensor", [False, True])
def test_feature_statistics_equal_numpy_in_blocks(monkeypatch, as_tensor):
    x = correlated_features(0, 1000, 48).astype(np.float32)
    monkeypatch.setattr(frechet, "_BLOCK_BYTES", 8 * 48 * 37)  # blocks of 37 rows
    mu, sigma = feature_statistics(torch.from_numpy(x) if as_tensor else x)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-10, atol=1e-14
    )
    assert np.array_equal(sigma, sigma.T)


def test_feature_statistics_rejects_bad_input():
    with pytest.raises(TooFewSamplesError):
        feature_statistics(np.zeros((1, 4)))
    with pytest.raises(ConfigError):
        feature_statistics(np.zeros(4))
    bad = np.zeros((5, 4))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="features"):
        feature_statistics(bad)


# --- frechet_distance ---------------------------------------------------------------------


@pytest.mark.parametrize(("n1", "n2"), [(400, 500), (30, 500), (500, 30), (20, 25)])
def test_frechet_equals_pytorch_fid_at_64_dims(n1, n2):
    """Full rank, and one or both covariances singular (fewer samples than dimensions)."""
    x1, x2 = correlated_features(n1, n1, 64), correlated_features(n2 + 1, n2, 64, shift=0.15)
    s1, s2 = feature_statistics(x1), feature_statistics(x2)
    ours = frechet_distance(*s1, *s2)
    assert isinstance(ours, float)
    assert ours == pytest.approx(pytorch_fid(*s1, *s2), rel=1e-6)
    if min(n1, n2) < 64:
        assert ours == pytest.approx(exact_frechet(x1, x2), rel=1e-7)


def test_frechet_closed_forms():
    rng = np.random.default_rng(0)
    mu = rng.standard_normal(16)
    a = correlated_features(1, 200, 16)
    sigma = np.cov(a, rowvar=False)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9 * np.trace(sigma)
    v1, v2 = rng.uniform(0.1, 2.0, 16), rng.uniform(0.1, 2.0, 16)  # diagonal covariances
    expected = ((mu - 1.0) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    got = frechet_distance(mu, np.diag(v1), np.ones(16), np.diag(v2))
    assert got == pytest.approx(expected, rel=1e-12)
    zero = np.zeros((16, 16))  # a point mass against a Gaussian: |mu1 - mu2|^2 + tr(S2)
    got = frechet_distance(mu, zero, np.ones(16), np.diag(v2))
    assert got == pytest.approx(((mu - 1.0) ** 2).sum() + v2.sum(), rel=1e-12)
    as_tensors = [torch.from_numpy(t) for t in (mu, np.diag(v1), np.ones(16), np.diag(v2))]
    assert frechet_distance(*as_tensors) == pytest.approx(expected, rel=1e-12)


def test_frechet_rejects_bad_input():
    mu, sigma = np.zeros(4), np.eye(4)
    with pytest.raises(ConfigError, match="covariances"):
        frechet_distance(mu, sigma, np.zeros(5), np.eye(5))
    with pytest.raises(ConfigError):
        frechet_distance(mu, np.eye(3), mu, sigma)
    with pytest.raises(ConfigError):
        frechet_distance(mu, sigma, mu, np.ones(4))
    with pytest.raises(ConfigError, match="symmetric"):
        frechet_distance(mu, sigma + np.triu(np.ones((4, 4)), 1), mu, sigma)
    bad = sigma.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="sigma2"):
        frechet_distance(mu, sigma, mu, bad)
    with pytest.raises(ValueError, match="mu1"):
        frechet_distance(np.full(4, np.nan), sigma, mu, sigma)


@pytest.fixture(scope="module")
def inception_sized():
    """Statistics of 2048-d features: 5000 samples (full rank) and 1000 (singular)."""
    full = [correlated_features(seed, 5000, 2048, shift) for seed, shift in ((1, 0.1), (2, 0.12))]
    few = [correlated_features(seed, 1000, 2048, shift) for seed, shift in ((3, 0.1), (4, 0.12))]
    return full, few


@pytest.mark.slow
def test_frechet_equals_pytorch_fid_at_2048_dims(inception_sized):
    full, _ = inception_sized
    s1, s2 = feature_statistics(full[0]), feature_statistics(full[1])
    assert frechet_distance(*s1, *s2) == pytest.approx(pytorch_fid(*s1, *s2), rel=1e-6)


@pytest.mark.slow
def test_frechet_singular_at_2048_dims(inception_sized):
    """Fewer samples than dimensions: ours is exact to rounding where ``S1`` is singular and
    to 1e-7 where only ``S2`` is (about 1e-8 measured); pytorch-fid's ``sqrtm`` of the
    singular product is off by about 6e-8, so the two agree to 1e-6."""
    full, few = inception_sized
    s_few = [feature_statistics(x) for x in few]
    exact = exact_frechet(*few)
    assert frechet_distance(*s_few[0], *s_few[1]) == pytest.approx(exact, rel=1e-12)
    assert pytorch_fid(*s_few[0], *s_few[1]) == pytest.approx(exact, rel=1e-6)
    s_full = feature_statistics(full[0])
    exact = exact_frechet(full[0], few[1])
    assert frechet_distance(*s_full, *s_few[1]) == pytest.approx(exact, rel=1e-7)
    assert frechet_distance(*s_few[1], *s_full) == pytest.approx(exact, rel=1e-12)


# --- kernel_inception_distance ------------------------------------------------------------


def torch_fidelity_kid(real, fake, **kwargs) -> tuple[float, float]:
    from torch_fidelity.metric_kid import kid_features_to_metric

    out = kid_features_to_metric(
        torch.from_numpy(real), torch.from_numpy(fake), verbose=False, **kwargs
    )
    return out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"]


def test_kid_equals_torch_fidelity_on_whole_sets():
    """With the subset as large as the set, every subset is a permutation and the unbiased
    MMD^2 does not depend on the order: equal for any seeds on either side."""
    real = correlated_features(0, 300, 128)
    fake = np.concatenate([correlated_features(1, 150, 128), correlated_features(2, 150, 128, 0.3)])
    ours = kernel_inception_distance(real, fake, subsets=4, subset_size=300, seed=0)
    theirs = torch_fidelity_kid(real, fake, kid_subsets=4, kid_subset_size=300, rng_seed=123)
    assert ours[0] == pytest.approx(theirs[0], rel=1e-9)
    assert ours[1] == pytest.approx(0.0, abs=1e-12 * abs(ours[0]))  # every round the same
    assert ours[0] > 0


@pytest.mark.parametrize(("degree", "gamma", "coef0"), [(3, None, 1.0), (2, 0.5, 0.0)])
def test_kid_equals_torch_fidelity_on_subsets(degree, gamma, coef0):
    """Equal seeds draw the same subsets as torch-fidelity, whatever the set sizes."""
    real, fake = correlated_features(3, 260, 64), correlated_features(4, 230, 64, shift=0.2)
    ours = kernel_inception_distance(
        real, fake, subsets=6, subset_size=100, degree=degree, gamma=gamma, coef0=coef0, seed=7
    )
    theirs = torch_fidelity_kid(
        real,
        fake,
        kid_subsets=6,
        kid_subset_size=100,
        rng_seed=7,
        kid_kernel_poly_degree=degree,
        kid_kernel_poly_gamma=gamma,
        kid_kernel_poly_coef0=coef0,
    )
    assert ours == pytest.approx(theirs, rel=1e-9)


def test_kid_subsets_are_deterministic_in_seed():
    real, fake = correlated_features(5, 200, 32), correlated_features(6, 200, 32, shift=0.2)
    a = kernel_inception_distance(real, fake, subsets=5, subset_size=50, seed=1)
    assert a == kernel_inception_distance(
        torch.from_numpy(real), fake, subsets=5, subset_size=50, seed=1
    )
    assert a != kernel_inception_distance(real, fake, subsets=5, subset_size=50, seed=2)


def test_kid_rejects_bad_input():
    real, fake = np.ones((50, 8)), np.ones((40, 8))
    with pytest.raises(TooFewSamplesError, match="subset_size"):
        kernel_inception_distance(real, fake, subset_size=45)
    with pytest.raises(ConfigError):
        kernel_inception_distance(real, np.ones((40, 9)), subset_size=10)
    with pytest.raises(ValueError, match="fake"):
        kernel_inception_distance(real, fake * np.nan, subset_size=10)


# --- inception_score ----------------------------------------------------------------------


def test_inception_score_equals_torch_fidelity():
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = np.random.default_rng(0).standard_normal((1003, 1008)) * 4  # splits of 100, 101
    theirs = isc_features_to_metric(torch.from_numpy(logits), splits=10, shuffle=False)
    ours = inception_score(logits, splits=10)
    assert ours[0] == pytest.approx(theirs["inception_score_mean"], rel=1e-12)
    assert ours[1] == pytest.approx(theirs["inception_score_std"], rel=1e-9)


@pytest.mark.filterwarnings("ignore:Metric `InceptionScore` will save")
def test_inception_score_equals_torchmetrics():
    """torchmetrics permutes with ``torch.randperm`` and reports the ``ddof=1`` std."""
    from torchmetrics.image.inception import InceptionScore

    logits = torch.randn(1000, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    metric = InceptionScore(feature=torch.nn.Identity(), splits=5)
    metric.update(logits * 3)
    torch.manual_seed(11)
    theirs = metric.compute()
    torch.manual_seed(11)
    ours = inception_score((logits * 3)[torch.randperm(1000)], splits=5)
    assert ours[0] == pytest.approx(theirs[0].item(), rel=1e-12)
    assert ours[1] * math.sqrt(5 / 4) == pytest.approx(theirs[1].item(), rel=1e-9)


def test_inception_score_closed_forms():
    assert inception_score(np.zeros((100, 7)), splits=4) == pytest.approx((1.0, 0.0), abs=1e-12)
    confident = np.eye(10)[np.arange(1000) % 10] * 200.0  # each split holds every class alike
    assert inception_score(confident, splits=10) == pytest.approx((10.0, 0.0), abs=1e-9)
    with pytest.raises(TooFewSamplesError):
        inception_score(np.zeros((5, 3)), splits=10)


# --- precision_recall, density_coverage ---------------------------------------------------


def reference_prdc(real, fake, k):
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):
        return compute_prdc(real, fake, nearest_k=k)


@pytest.mark.parametrize(
    ("n_real", "n_fake", "dim", "k"),
    [(200, 200, 16, 3), (300, 150, 64, 5), (120, 400, 32, 1), (500, 400, 2048, 3)],
)
def test_prdc_equals_reference(n_real, n_fake, dim, k):
    real = correlated_features(n_real, n_real, dim, mixing=0)
    fake = correlated_features(n_fake + 1, n_fake, dim, shift=0.12, mixing=0) * 1.05
    ref = reference_prdc(real, fake, k)
    assert precision_recall(real, fake, k=k) == pytest.approx(
        (ref["precision"], ref["recall"]), abs=1e-12
    )
    assert density_coverage(real, fake, k=k) == pytest.approx(
        (ref["density"], ref["coverage"]), abs=1e-12
    )
    assert 0 < ref["precision"] < 1 and 0 < ref["recall"] < 1  # not a trivial case


def test_prdc_blocks_do_not_change_the_result(monkeypatch):
    real, fake = correlated_features(0, 150, 8), correlated_features(1, 130, 8, shift=0.2)
    whole = precision_recall(real, fake, k=4), density_coverage(real, fake, k=4)
    monkeypatch.setattr(metrics, "_BLOCK_BYTES", 8 * 150 * 7)  # blocks of 7 rows
    assert (
        precision_recall(torch.from_numpy(real), fake, k=4),
        density_coverage(real, fake, k=4),
    ) == whole
    ref = reference_prdc(real, fake, 4)
    expected = (ref["precision"], ref["recall"], ref["density"], ref["coverage"])
    assert whole[0] + whole[1] == pytest.approx(expected, abs=1e-12)


def test_prdc_rejects_bad_input():
    with pytest.raises(TooFewSamplesError, match="k=5"):
        density_coverage(np.ones((5, 3)), np.ones((10, 3)))
    with pytest.raises(ConfigError):
        precision_recall(np.ones((10, 3)), np.ones((10, 4)))
    with pytest.raises(ConfigError):
        precision_recall(np.ones((10, 3)), np.ones((10, 3)), k=0)


# --- mixture_modes ------------------------------------------------------------------------


def test_modes_at_the_centres():
    centers = np.array(RING8_CENTERS)
    out = mixture_modes(np.repeat(centers, 5, axis=0), centers, RING8_STD)
    assert out == {"modes": 8, "high_quality": 1.0, "reverse_kl": pytest.approx(0.0, abs=1e-15)}
    assert isinstance(out["modes"], int) and isinstance(out["reverse_kl"], float)


def test_modes_collapsed_onto_one():
    centers = np.array(GRID25_CENTERS)
    points = centers[12] + np.random.default_rng(0).standard_normal((300, 2)) * GRID25_STD * 0.5
    out = mixture_modes(torch.from_numpy(points), centers, GRID25_STD)
    assert out["modes"] == 1
    assert out["reverse_kl"] == pytest.approx(math.log(25), rel=1e-12)
    assert out["high_quality"] > 0.98


def test_modes_hand_computed():
    centers = np.array(RING8_CENTERS)
    s = RING8_STD
    points = [
        *[centers[0]] * 3, centers[0] + [0.0, 2.9 * s],  # mode 0: 4 high-quality samples
        centers[1], centers[1] - [2.0 * s, 0.0],  # mode 1: 2
        centers[2], centers[2] + [0.0, 3.1 * s],  # mode 2: 1, and one beyond 3 std
        [0.0, 0.0], [5.0, 5.0],  # nowhere near a mode
    ]  # fmt: skip
    out = mixture_modes(np.array(points), centers, s)
    p = np.array([4, 2, 1]) / 7  # the high-quality histogram
    assert out["modes"] == 3
    assert out["high_quality"] == pytest.approx(7 / 10, rel=1e-15)
    assert out["reverse_kl"] == pytest.approx(float((p * np.log(p * 8)).sum()), rel=1e-12)
    loose = mixture_modes(np.array(points), centers, s, threshold=3.2)
    assert loose["high_quality"] == pytest.approx(8 / 10) and loose["modes"] == 3


@pytest.mark.parametrize(
    ("centers", "std"), [(RING8_CENTERS, RING8_STD), (GRID25_CENTERS, GRID25_STD)]
)
def test_modes_of_the_true_mixture(centers, std):
    """The mixture's own test split: all modes, and P(|N(0, I_2)| < 3) = 1 - exp(-4.5)
    high-quality (10000 samples: the binomial std is 0.001)."""
    data = mixture(centers, std, "test")
    out = mixture_modes(data.x, centers, std)
    assert out["modes"] == len(centers)
    assert out["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.004)
    assert out["reverse_kl"] < 0.01


def test_modes_without_high_quality_samples_and_bad_input():
    centers = np.array(RING8_CENTERS)
    out = mixture_modes(np.zeros((4, 2)), centers, RING8_STD)
    assert out == {"modes": 0, "high_quality": 0.0, "reverse_kl": math.inf}
    with pytest.raises(ConfigError):
        mixture_modes(np.zeros((4, 2)), centers, 0.0)
    with pytest.raises(ConfigError):
        mixture_modes(np.zeros((4, 3)), centers, RING8_STD)
    with pytest.raises(ValueError, match="points"):
        mixture_modes(np.full((4, 2), np.nan), centers, RING8_STD)

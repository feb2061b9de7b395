"""The built-in evaluators, registered through the ``zoo_evaluators`` hook like any plugin's.

Each reads the shared passes of an :class:`~zoo_core.evaluation.harness.Evaluation`; the
metric functions themselves live in :mod:`zoo_core.evaluation.frechet` and
:mod:`zoo_core.evaluation.metrics`.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from typing import ClassVar

import torch

from zoo_core.data import load_dataset
from zoo_core.errors import CapabilityError, ConfigError
from zoo_core.evaluation.frechet import feature_statistics, frechet_distance
from zoo_core.evaluation.harness import Evaluation
from zoo_core.evaluation.metrics import (
    density_coverage,
    inception_score,
    kernel_inception_distance,
    mixture_modes,
    precision_recall,
)
from zoo_core.evaluator import Evaluator

IMAGES = frozenset({"image"})
ALL = frozenset({"image", "audio", "sequence", "points", "text"})


def _nonfinite_note(run: Evaluation) -> str | None:
    gen = run.generated()
    if gen.nonfinite:
        return f"{gen.nonfinite} of {gen.n} samples were NaN or Inf"
    return None


class _FeatureEvaluator(Evaluator):
    """Metrics in the protocol's feature space: invalid when any sample was not finite."""

    modalities: ClassVar[frozenset[str]] = IMAGES
    features: ClassVar[bool] = True

    def compute(self, run: Evaluation) -> dict[str, float]:
        values = self.from_features(run)
        note = _nonfinite_note(run)
        if note:
            for name in values:
                run.invalid[name] = note
        return values

    @abstractmethod
    def from_features(self, run: Evaluation) -> dict[str, float]:
        """The metric values from the run's features (and the reference's)."""


class FrechetEvaluator(_FeatureEvaluator):
    """Fréchet distance (FID in the Inception space) between generated and reference
    features (Heusel et al. 2017, arXiv 1706.08500)."""

    metrics = ("fid",)
    lower_is_better: ClassVar[dict[str, bool]] = {"fid": True}

    def from_features(self, run: Evaluation) -> dict[str, float]:
        ref = run.reference()
        mu, sigma = feature_statistics(run.generated().features.double())
        return {"fid": float(frechet_distance(mu, sigma, ref.mu, ref.sigma))}


class KIDEvaluator(_FeatureEvaluator):
    """Kernel Inception Distance (Bińkowski et al. 2018, arXiv 1801.01401)."""

    metrics = ("kid", "kid_std")
    lower_is_better: ClassVar[dict[str, bool]] = {"kid": True, "kid_std": True}

    def from_features(self, run: Evaluation) -> dict[str, float]:
        p = run.protocol
        mean, std = kernel_inception_distance(
            run.reference().features, run.generated().features,
            subsets=p.kid_subsets, subset_size=p.kid_subset_size, seed=p.seed,
        )  # fmt: skip
        return {"kid": float(mean), "kid_std": float(std)}


class InceptionScoreEvaluator(_FeatureEvaluator):
    """Inception Score (Salimans et al. 2016, arXiv 1606.03498) from the extractor's
    classifier head."""

    metrics = ("inception_score", "inception_score_std")
    lower_is_better: ClassVar[dict[str, bool]] = {
        "inception_score": False,
        "inception_score_std": True,
    }

    def from_features(self, run: Evaluation) -> dict[str, float]:
        logits = run.generated().logits
        if logits is None:
            raise CapabilityError(run.protocol.extractor, "a classifier head", frozenset())
        mean, std = inception_score(logits, splits=run.protocol.is_splits)
        return {"inception_score": float(mean), "inception_score_std": float(std)}


def _prdc_sides(run: Evaluation) -> tuple[torch.Tensor, torch.Tensor]:
    limit = run.protocol.prdc_samples
    real, fake = run.reference().features, run.generated().features
    return (real, fake) if limit is None else (real[:limit], fake[:limit])


class PrecisionRecallEvaluator(_FeatureEvaluator):
    """Improved precision and recall (Kynkäänniemi et al. 2019, arXiv 1904.06991)."""

    metrics = ("precision", "recall")
    lower_is_better: ClassVar[dict[str, bool]] = {"precision": False, "recall": False}

    def from_features(self, run: Evaluation) -> dict[str, float]:
        precision, recall = precision_recall(*_prdc_sides(run), k=run.protocol.nearest_k)
        return {"precision": float(precision), "recall": float(recall)}


class DensityCoverageEvaluator(_FeatureEvaluator):
    """Density and coverage (Naeem et al. 2020, arXiv 2002.09797)."""

    metrics = ("density", "coverage")
    lower_is_better: ClassVar[dict[str, bool]] = {"density": False, "coverage": False}

    def from_features(self, run: Evaluation) -> dict[str, float]:
        density, coverage = density_coverage(*_prdc_sides(run), k=run.protocol.density_k)
        return {"density": float(density), "coverage": float(coverage)}


class ModesEvaluator(Evaluator):
    """Modes captured, high-quality share and reverse KL on the 2-D mixtures
    (VEEGAN / PacGAN protocol), from the mixture parameters the dataset records."""

    metrics = ("modes", "high_quality", "reverse_kl")
    modalities: ClassVar[frozenset[str]] = frozenset({"points"})
    lower_is_better: ClassVar[dict[str, bool]] = {
        "modes": False,
        "high_quality": False,
        "reverse_kl": True,
    }

    def compute(self, run: Evaluation) -> dict[str, float]:
        params = load_dataset(run.protocol.dataset, split=run.protocol.split).params
        if "centers" not in params or "std" not in params:
            raise ConfigError(f"{run.protocol.dataset} is not a Gaussian mixture with known modes")
        gen = run.generated()
        result = mixture_modes(gen.samples, torch.tensor(params["centers"]), params["std"])
        values = {name: float(result[name]) for name in self.metrics}
        note = _nonfinite_note(run)
        if note:
            for name in values:
                run.invalid[name] = note
        return values


class BitsPerDimEvaluator(Evaluator):
    """Negative log-likelihood in bits per dimension on the protocol's split (a bound
    where the model's ``log_prob`` is one), with its standard error."""

    metrics = ("bits_per_dim", "bits_per_dim_sem")
    modalities: ClassVar[frozenset[str]] = ALL
    requires: ClassVar[frozenset[str]] = frozenset({"log_prob"})
    lower_is_better: ClassVar[dict[str, bool]] = {"bits_per_dim": True, "bits_per_dim_sem": True}

    def compute(self, run: Evaluation) -> dict[str, float]:
        values = run.log_likelihoods()
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            run.invalid["bits_per_dim"] = (
                f"{int((~finite).sum())} of {values.numel()} examples had a non-finite likelihood"
            )
            values = values[finite]
        if values.numel() == 0:
            return {"bits_per_dim": float("nan"), "bits_per_dim_sem": float("nan")}
        sem = values.std().item() / values.numel() ** 0.5 if values.numel() > 1 else 0.0
        return {"bits_per_dim": values.mean().item(), "bits_per_dim_sem": sem}


class SpeedEvaluator(Evaluator):
    """Sampling speed: samples per second per device at the protocol's batch size (over
    the sampling pass), the latency of one sample, and network evaluations per sample."""

    metrics = ("samples_per_s", "latency_s", "nfe")
    modalities: ClassVar[frozenset[str]] = ALL
    speed: ClassVar[bool] = True
    lower_is_better: ClassVar[dict[str, bool]] = {
        "samples_per_s": False,
        "latency_s": True,
        "nfe": True,
    }

    def compute(self, run: Evaluation) -> dict[str, float]:
        gen = run.generated()
        values = {"samples_per_s": gen.n / gen.seconds if gen.seconds > 0 else float("nan")}
        # One sample past the protocol's range (never cached), after a warm-up draw.
        run.draw(1, start=run.protocol.n_samples)
        if run.device.type == "cuda":
            torch.cuda.synchronize(run.device)
        began = time.perf_counter()
        run.draw(1, start=run.protocol.n_samples + 1)
        if run.device.type == "cuda":
            torch.cuda.synchronize(run.device)
        values["latency_s"] = time.perf_counter() - began
        nfe = run.generator.nfe(run.options)
        values["nfe"] = float("nan") if nfe is None else float(nfe)
        return values


BUILTIN_EVALUATORS: tuple[type[Evaluator], ...] = (
    FrechetEvaluator,
    KIDEvaluator,
    InceptionScoreEvaluator,
    PrecisionRecallEvaluator,
    DensityCoverageEvaluator,
    ModesEvaluator,
    BitsPerDimEvaluator,
    SpeedEvaluator,
)


def builtin_evaluators() -> dict[str, type[Evaluator]]:
    """Protocol metric name -> evaluator class (what the core's ``zoo_evaluators`` gives).

    A protocol names the group by its first metric (``kid`` for KID and its std, ``speed``
    for the speed figures, ``modes`` for the mixture metrics)."""
    names = {
        "fid": FrechetEvaluator,
        "kid": KIDEvaluator,
        "inception_score": InceptionScoreEvaluator,
        "precision": PrecisionRecallEvaluator,
        "recall": PrecisionRecallEvaluator,
        "density": DensityCoverageEvaluator,
        "coverage": DensityCoverageEvaluator,
        "modes": ModesEvaluator,
        "bits_per_dim": BitsPerDimEvaluator,
        "speed": SpeedEvaluator,
    }
    return names

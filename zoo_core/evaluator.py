"""The ``Evaluator`` interface: one metric (or a group sharing a feature space) computed
on a generator under a fixed protocol, and the facts about its metrics, declared once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from zoo_core.evaluation.harness import Evaluation


class Evaluator(ABC):
    """Computes metrics of a Generator under a protocol.

    Evaluators do not sample or extract features themselves: they read the shared passes of
    an :class:`~zoo_core.evaluation.harness.Evaluation` (``run.generated()``,
    ``run.reference()``), so that every metric of a protocol is computed from one sampling
    pass and one feature pass, on one process or sharded under ``torchrun``. To run one on
    its own: ``MyEvaluator().compute(Evaluation(generator, protocol))``.

    The class attributes are the facts about its metrics, declared here once; the harness,
    the protocols, the records and the leaderboard read them from the class.

    Class attributes:
        metrics: names of the metrics it returns (e.g. ``("kid", "kid_std")``); the
            ``zoo_evaluators`` hook maps each name a protocol may ask for to the class.
        modalities: the sample modalities it applies to.
        requires: capabilities the generator must declare (else the metric is skipped,
            with the reason, in the record; the leaderboard runs a protocol only for models
            that have what its primary metric requires).
        lower_is_better: metric name -> whether lower is better (for ranking).
        features: it reads the protocol's feature extractor (FID, KID, precision, ...): a
            protocol that asks for it must name an extractor.
        speed: its values are the record's ``speed`` figures (shown beside the metrics,
            never ranked), not metrics.
    """

    metrics: ClassVar[tuple[str, ...]]
    modalities: ClassVar[frozenset[str]]
    requires: ClassVar[frozenset[str]] = frozenset({"sample"})
    lower_is_better: ClassVar[dict[str, bool]] = {}
    features: ClassVar[bool] = False
    speed: ClassVar[bool] = False

    @abstractmethod
    def compute(self, run: Evaluation) -> dict[str, float]:
        """Metric name -> value from the run's shared passes; mark a value that is not
        valid with ``run.invalid[name] = reason``."""

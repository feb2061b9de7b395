"""The ``Evaluator`` interface: one metric (or a group sharing a feature space) computed
on a generator under a fixed protocol."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from zoo_core.generator import Generator

if TYPE_CHECKING:
    from zoo_core.evaluation.harness import Evaluation


class Evaluator(ABC):
    """Computes metrics of a Generator under a protocol.

    Evaluators do not sample or extract features themselves: they read the shared passes of
    an :class:`~zoo_core.evaluation.harness.Evaluation` (``run.generated()``,
    ``run.reference()``), so that every metric of a protocol is computed from one sampling
    pass and one feature pass, on one process or sharded under ``torchrun``.

    Class attributes:
        metrics: names of the metrics it returns (e.g. ``("kid", "kid_std")``); the
            ``zoo_evaluators`` hook maps each name a protocol may ask for to the class.
        modalities: the sample modalities it applies to.
        requires: capabilities the generator must declare (else the metric is skipped,
            with the reason, in the record).
        lower_is_better: metric name -> whether lower is better (for ranking).
    """

    metrics: ClassVar[tuple[str, ...]]
    modalities: ClassVar[frozenset[str]]
    requires: ClassVar[frozenset[str]] = frozenset({"sample"})
    lower_is_better: ClassVar[dict[str, bool]] = {}

    def evaluate(
        self,
        generator: Generator,
        protocol: Any,
        *,
        device: torch.device | str | None = None,
        seed: int | None = None,
    ) -> dict[str, float]:
        """Metric name -> value for ``generator`` under ``protocol`` (a name or a
        ``Protocol``), sampling with ``seed`` (default: the protocol's)."""
        from zoo_core.evaluation.harness import Evaluation
        from zoo_core.evaluation.protocol import get_protocol

        protocol = get_protocol(protocol)
        if seed is not None:
            protocol = protocol.replace(seed=seed)
        return self.compute(Evaluation(generator, protocol, device=device))

    @abstractmethod
    def compute(self, run: Evaluation) -> dict[str, float]:
        """Metric name -> value from the run's shared passes; mark a value that is not
        valid with ``run.invalid[name] = reason``."""

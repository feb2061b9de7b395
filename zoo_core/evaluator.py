"""The ``Evaluator`` interface: one metric (or a group sharing a feature space) computed
on a generator under a fixed protocol."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

from zoo_core.generator import Generator


class Evaluator(ABC):
    """Computes metrics of a Generator under a protocol.

    Class attributes:
        metrics: names of the metrics it returns (e.g. ``("fid", "kid")``).
        modalities: the sample modalities it applies to.
    """

    metrics: ClassVar[tuple[str, ...]]
    modalities: ClassVar[frozenset[str]]

    @abstractmethod
    def evaluate(
        self,
        generator: Generator,
        protocol: Any,
        *,
        device: torch.device | str | None,
        seed: int,
    ) -> dict[str, float]:
        """Metric name -> value for ``generator`` under ``protocol``, sampling with ``seed``."""

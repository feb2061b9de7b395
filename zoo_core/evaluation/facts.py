"""The facts about metrics that the evaluator classes declare (``lower_is_better``,
``features``, ``requires``, ``speed``), looked up by metric name through the catalog, so
that the harness, the protocols, the leaderboard and the renderer all read them from the one
place they are declared."""

from __future__ import annotations

from zoo_core.catalog import EVALUATORS, get_catalog
from zoo_core.evaluator import Evaluator
from zoo_core.protocol import Protocol


def metric_evaluators(protocol: Protocol) -> dict[str, type[Evaluator]]:
    """Each metric name of ``protocol`` -> the evaluator class that computes it.

    Raises:
        UnknownMetricError: a name no plugin's evaluator computes (with the closest).
        DuplicateRegistrationError: two plugins claim one of the names.
    """
    catalog = get_catalog()
    return {name: catalog.get(EVALUATORS, name) for name in protocol.metrics}


def evaluator_of(name: str) -> type[Evaluator] | None:
    """The evaluator a protocol names as ``name``, if exactly one installed plugin has it."""
    return get_catalog().values(EVALUATORS).get(name)


def metric_direction(metric: str) -> bool | None:
    """Whether lower is better for ``metric``, as the evaluator computing it declares
    (``None``: no installed evaluator returns a metric of that name)."""
    for cls in get_catalog().values(EVALUATORS).values():
        if metric in cls.lower_is_better:
            return cls.lower_is_better[metric]
    return None

"""zoo-autoregressive against the zoo's contract: the conformance kit of zoo_core.testing,
parametrized over every architecture, trainer and model card the distribution registers (the
same tests that `pytest --zoo-conformance=zoo-autoregressive` runs against an installed copy)."""

from zoo_core.testing.conformance import *  # noqa: F403

DISTRIBUTION = "zoo-autoregressive"

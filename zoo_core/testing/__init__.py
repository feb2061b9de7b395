"""The zoo's test kit, shipped with the core so that a plugin written anywhere is held to the
same contract.

- A pytest plugin (entry point ``pytest11``: ``zoo_core.testing.plugin``, loaded by pytest
  wherever zoo-core is installed): ``pytest --zoo-conformance=DIST`` runs the conformance
  kit against the installed plugin distribution ``DIST``; a plugin's own suite runs it from
  a test module that sets ``DISTRIBUTION`` and star-imports ``zoo_core.testing.conformance``.
- Fixtures ``no_network`` (every socket refused, attempts recorded) and ``hub_cache`` (a
  Hugging Face cache built by hand, for offline loading tests).
- ``zoo_core.testing.checks``: the rules, one function each, raising
  :class:`ConformanceError` that names the rule broken.

The kit needs pytest, which zoo-core does not depend on: import this package only in tests.
"""

from __future__ import annotations

from zoo_core.testing.checks import ConformanceError, check_architecture
from zoo_core.testing.network import NetworkAttempts, block_network, build_hub_cache

__all__ = ["ConformanceError", "NetworkAttempts", "block_network", "build_hub_cache",
           "check_architecture"]  # fmt: skip

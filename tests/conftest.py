"""Shared test fixtures of the core's tests (``no_network`` and ``hub_cache`` come from the
zoo's pytest plugin, ``zoo_core.testing``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fresh_plugins(fresh_zoo):
    """Each test starts with freshly loaded plugins and a clean ZOO_* environment (the
    kit's ``fresh_zoo``)."""

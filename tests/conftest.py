"""Shared test fixtures of the core's tests (``no_network`` and ``hub_cache`` come from the
zoo's pytest plugin, ``zoo_core.testing``)."""

from __future__ import annotations

import os

import pytest

from zoo_core.plugin_manager import reset_plugins


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch):
    """Each test starts with freshly loaded plugins and a clean ZOO_* environment."""
    for name in list(os.environ):
        if name.startswith("ZOO_") or name == "HF_HUB_OFFLINE":
            monkeypatch.delenv(name)
    reset_plugins()
    yield
    reset_plugins()

"""Shared test fixtures of the core.

Under ``CI=true`` a skipped test fails: a test whose data or dependency is missing must not
pass silently in CI.
"""

from __future__ import annotations

import os
import socket

import pytest

from zoo_core.plugin_manager import reset_plugins


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {report.longrepr}"


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch):
    """Each test starts with freshly loaded plugins and a clean ZOO_* environment."""
    for name in list(os.environ):
        if name.startswith("ZOO_") or name == "HF_HUB_OFFLINE":
            monkeypatch.delenv(name)
    reset_plugins()
    yield
    reset_plugins()


class NetworkCalls:
    """Counts attempted network connections (each is refused)."""

    def __init__(self):
        self.attempts: list[object] = []


@pytest.fixture
def no_network(monkeypatch):
    """Block every socket connection and DNS lookup; yields the record of attempts."""
    calls = NetworkCalls()

    def refuse(*args, **kwargs):
        calls.attempts.append(args[1:] if len(args) > 1 else args)
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return calls

"""Shared test fixtures of the core's tests."""

from __future__ import annotations

import os
import socket

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

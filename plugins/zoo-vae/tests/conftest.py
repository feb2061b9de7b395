"""Fixtures of zoo-vae's tests: a network that refuses every connection, and a Hugging Face
cache built by hand (the layout of tests/test_weights_sources.py's ``build_hub_cache``, which
the core's tests keep in their own directory, out of a plugin's import path)."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import huggingface_hub.constants
import pytest


@pytest.fixture
def no_network(monkeypatch) -> list:
    """Refuse every socket connection and DNS lookup; yields the list of attempts."""
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args[1:] if len(args) > 1 else args)
        raise OSError("network blocked by the test")

    for owner, name in [
        (socket.socket, "connect"),
        (socket.socket, "connect_ex"),
        (socket, "getaddrinfo"),
        (socket, "create_connection"),
    ]:
        monkeypatch.setattr(owner, name, refuse)
    return attempts


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Callable[[str, str, dict[str, bytes]], Path]:
    """``build(repo, commit, files)``: huggingface_hub's cache layout under a fresh
    ``ZOO_HUB_CACHE`` (blobs by sha256, a snapshot of relative links, ``refs/main``);
    returns the snapshot folder."""
    cache = tmp_path / "hub"
    monkeypatch.setenv("ZOO_HUB_CACHE", str(cache))
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: keep its own switch off so that
    # the zoo alone keeps it off the network; and forget the agent registry it fetches once
    # per process, so that such a fetch would show as a network attempt here.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    agent = sys.modules.get("huggingface_hub.utils._detect_agent")
    if agent is not None:
        monkeypatch.setattr(agent, "_registry", None, raising=False)

    def build(repo: str, commit: str, files: dict[str, bytes]) -> Path:
        root = cache / f"models--{repo.replace('/', '--')}"
        snapshot = root / "snapshots" / commit
        for folder in (root / "blobs", snapshot, root / "refs"):
            folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            blob = root / "blobs" / hashlib.sha256(data).hexdigest()
            blob.write_bytes(data)
            os.symlink(os.path.relpath(blob, snapshot), snapshot / name)
        (root / "refs" / "main").write_text(commit)
        return snapshot

    return build

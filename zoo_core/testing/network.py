"""Test fixtures without torch: sockets refused, and a Hugging Face cache built by hand."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path


class NetworkAttempts(list):
    """The connections a test attempted (each refused); ``.attempts`` is the list itself."""

    @property
    def attempts(self) -> list:
        return self


def block_network(monkeypatch) -> NetworkAttempts:
    """Refuse every socket connection and DNS lookup for the rest of the test (through
    pytest's ``monkeypatch``); returns the record of attempts."""
    attempts = NetworkAttempts()

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


def build_hub_cache(cache: Path, repo: str, commit: str, files: dict[str, bytes]) -> Path:
    """huggingface_hub's cache layout for one model repo under ``cache``: blobs named by
    their sha256, a snapshot of relative symlinks to them, and ``refs/main`` naming the
    commit. Returns the snapshot folder."""
    root = Path(cache) / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    for folder in (root / "blobs", snapshot, root / "refs"):
        folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (root / "refs" / "main").write_text(commit)
    return snapshot

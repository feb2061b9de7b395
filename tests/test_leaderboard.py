"""`zoo leaderboard`: missing evaluations run, finished ones reused, failures recorded
while the others go on, and the pages rendered from the records."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from zoo_core.evaluation.leaderboard import run_leaderboard
from zoo_core.evaluation.results import read_records
from zoo_core.protocol import get_protocol

BROKEN = {
    "gmm-ring8-broken": {
        "architecture": "gmm",
        "family": "mixture",
        "plugin": "zoo-core",
        "modality": "points",
        "dataset": "ring8",
        "config": {"components": 8, "dim": 2},
        "weights": {"bundled": "zoo_core.builtin:no-such-file.safetensors", "sha256": "0" * 64},
    }
}


@pytest.fixture
def env(tmp_path, monkeypatch):
    registry = tmp_path / "extra.yaml"
    registry.write_text(yaml.safe_dump(BROKEN))
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_runs_what_is_missing_reuses_the_rest_and_records_failures(env):
    out = env / "board"
    protocols = ["ring8-modes", "ring8-bpd"]
    first = run_leaderboard(out, models="gmm-*", protocols=protocols, device="cpu")
    records = read_records(out / "results.jsonl")
    assert len(records) == len(first.ran) == 4 and not first.reused
    by = {(r.model, r.protocol_name): r for r in records}
    ok = by[("gmm-ring8", "ring8-modes")]
    assert ok.status == "ok" and ok.metrics["modes"] == 8
    assert by[("gmm-ring8", "ring8-bpd")].metrics["bits_per_dim"] < 0  # a density
    broken = by[("gmm-ring8-broken", "ring8-modes")]
    assert broken.status == "failed" and "WeightsNotFoundError" in broken.error
    # The pages hold the ranked row and the failed one with its reason.
    md = (out / "leaderboard.md").read_text()
    assert "| 1 | gmm-ring8 |" in md and "gmm-ring8-broken" in md and "no-such-file" in md
    assert (out / "index.html").is_file() and (out / "grids" / "gmm-ring8.png").is_file()

    # Same weights, same protocol hash: reused. The failed ones are tried again.
    second = run_leaderboard(out, models="gmm-*", protocols=protocols, device="cpu")
    assert len(second.reused) == 2 and {r.model for r in second.ran} == {"gmm-ring8-broken"}
    assert len(read_records(out / "results.jsonl")) == 6
    # --force reruns; a changed protocol (here, --n) is a new hash and runs.
    forced = run_leaderboard(out, models="gmm-ring8", protocols=["ring8-modes"], force=True)
    assert [r.model for r in forced.ran] == ["gmm-ring8"] and not forced.reused
    small = run_leaderboard(out, models="gmm-ring8", protocols=["ring8-modes"], n=500,
                            allow_small=True)  # fmt: skip
    assert len(small.ran) == 1
    assert small.ran[0].protocol_hash != get_protocol("ring8-modes").hash


def test_the_cli_renders_and_reports_failures(env):
    environment = {k: v for k, v in os.environ.items()}
    result = subprocess.run(
        [sys.executable, "-m", "zoo_core", "leaderboard", "--out", str(env / "b"), "--models",
         "gmm-*", "--protocol", "ring8-modes", "--no-progress"],
        capture_output=True, text=True, env=environment, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 evaluations run (1 failed), 0 reused" in result.stdout
    assert "failed: gmm-ring8-broken / ring8-modes" in result.stderr
    unknown = subprocess.run(
        [sys.executable, "-m", "zoo_core", "leaderboard", "--out", str(env / "b"), "--protocol",
         "ring9-modes"],
        capture_output=True, text=True, env=environment, timeout=120,
    )  # fmt: skip
    assert unknown.returncode == 1 and "did you mean 'ring8-modes'" in unknown.stderr

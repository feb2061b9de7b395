"""``zoo new-plugin``: the scaffolded plugin works at once. It is generated into a temporary
folder, installed (pip, no network, into its own target folder), its own tests and the
conformance kit pass against the installed copy, and ``zoo list`` finds its model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo_core import scaffold
from zoo_core.cli import cli
from zoo_core.errors import ConfigError

BIN = Path(sys.executable).parent


def test_plugin_names_follow_the_zoo_conventions():
    names = scaffold.plugin_names("normalizing-flows")
    assert names["__DIST__"] == "zoo-normalizing-flows"
    assert names["__PACKAGE__"] == "zoo_normalizing_flows"
    assert names["__CLASS__"] == "NormalizingFlows"
    assert scaffold.plugin_names("zoo-flows")["__NAME__"] == "flows"


@pytest.mark.parametrize("name", ["Flows", "1flow", "flows_", "my--flow", "flöw", ""])
def test_a_bad_name_is_refused(name, tmp_path):
    with pytest.raises(ConfigError, match="must be lowercase letters and digits"):
        scaffold.new_plugin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_refused_and_a_failure_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "zoo-flows").mkdir()
    with pytest.raises(ConfigError, match="exists; choose another --out"):
        scaffold.new_plugin("flows", tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("training failed")

    monkeypatch.setattr(scaffold, "_make_checkpoint", broken)
    with pytest.raises(RuntimeError, match="training failed"):
        scaffold.new_plugin("other", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zoo-flows"]


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, f"{' '.join(args)}:\n{output}"
    return result


@pytest.mark.slow
def test_a_new_plugin_installs_passes_its_tests_and_the_kit_and_is_listed(tmp_path, no_network):
    result = CliRunner().invoke(cli, ["new-plugin", "flows", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    plugin = tmp_path / "zoo-flows"
    expected = {
        "pyproject.toml", "README.md", "zoo_flows/plugin.py", "zoo_flows/flows.py",
        "zoo_flows/cards.yaml", "zoo_flows/weights/flows-ring8.safetensors",
        "scripts/make_checkpoint.py", "recipes/flows-ring8.yaml", "tests/test_flows.py",
        "tests/test_flows_conformance.py",
    }  # fmt: skip
    assert expected <= {str(p.relative_to(plugin)) for p in plugin.rglob("*") if p.is_file()}
    assert "0" * 64 not in (plugin / "zoo_flows" / "cards.yaml").read_text()  # sha written

    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    env["ZOO_NETWORK"] = "never"
    site = tmp_path / "site"
    _run([str(BIN / "ruff"), "check", str(plugin)], plugin, env)
    _run([str(BIN / "ruff"), "format", "--check", str(plugin)], plugin, env)
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
          "--no-index", "--target", str(site), str(plugin)], tmp_path, env)  # fmt: skip
    env["PYTHONPATH"] = str(site)
    own = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], plugin, env)
    assert " passed" in own.stdout and "failed" not in own.stdout
    kit = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "--zoo-conformance=zoo-flows"], tmp_path, env)  # fmt: skip
    assert "9 passed" in kit.stdout  # six architecture rules, the training step, two card rules
    listed = _run([sys.executable, "-m", "zoo_core", "list", "--json"], tmp_path, env)
    rows = json.loads(listed.stdout)
    assert "flows-ring8" in [row["id"] for row in rows]
    assert no_network == []

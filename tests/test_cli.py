"""The CLI end to end, each command in a subprocess: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoo_core as zoo


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "zoo_core", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )


def test_list_and_json():
    result = run("list", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {"id": "gmm-ring8", "family": "mixture", "architecture": "gmm", "dataset": "ring8",
            "modality": "points"} in rows  # fmt: skip
    table = run("list", "gmm-*", "--family", "mixture")
    assert table.returncode == 0 and "gmm-ring8" in table.stdout
    empty = run("list", "no-such-*", "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []


def test_info():
    result = run("info", "gmm-ring8", "--json")
    assert result.returncode == 0, result.stderr
    card = json.loads(result.stdout)
    assert card["architecture"] == "gmm" and card["weights"]["bundled"].endswith(".safetensors")
    assert card["source"] == "registry.yaml"
    assert "PacGAN" in run("info", "gmm-ring8").stdout


def test_unknown_id_is_one_line_exit_1():
    result = run("info", "gmm-rnig8")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "unknown model id 'gmm-rnig8'" in result.stderr and "gmm-ring8" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.numerics
def test_sample_writes_the_same_points_as_the_library(tmp_path):
    out = tmp_path / "ring.npy"
    result = run("sample", "gmm-ring8", "-n", "20", "--seed", "3", "-o", str(out),
                 "--batch-size", "7", "--no-progress")  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = zoo.load("gmm-ring8").sample(20, seed=3).numpy()
    # batches of 7 against one of 20: equal up to the rounding of kernels chosen by size
    np.testing.assert_allclose(np.load(out), expected, rtol=0, atol=1e-6)
    png = tmp_path / "ring.png"
    assert run("sample", "gmm-ring8", "-n", "50", "-o", str(png)).returncode == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "0"], "0 is not in the range"),
        (["-n", "two"], "'two' is not a valid integer"),
        (["--set", "steps=50"], "unknown option(s) steps"),
        (["--set", "novalue"], "expected key=value"),
        (["-o", "{tmp}/missing/x.npy"], "does not exist"),
        (["-o", "{tmp}/x.wav"], "use one of .png, .npy"),
        (["--batch-size", "0"], "0 is not in the range"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "x.npy")]
    result = run("sample", "gmm-ring8", *args)
    assert result.returncode == 2, result.stderr
    assert message in " ".join(result.stderr.split())
    assert list(tmp_path.rglob("*")) == []


def test_errors_exit_1_without_traceback_unless_debug(tmp_path):
    missing = tmp_path / "nothing.safetensors"
    args = ["sample", "gmm-ring8", "-o", str(tmp_path / "x.npy"), "--weights", str(missing)]
    result = run(*args)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Traceback" in run("--debug", *args).stderr
    assert "Traceback" in run(*args, env={"ZOO_DEBUG": "1"}).stderr
    assert not (tmp_path / "x.npy").exists()


def test_malformed_extra_registry_is_one_line_error(tmp_path):
    bad = tmp_path / "extra.yaml"
    bad.write_text("my-model:\n  architecture: gmm\n  colour: red\n")
    result = run("list", env={"ZOO_REGISTRY": str(bad)})
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "\n" not in line and str(bad) in line and "'my-model'" in line and "colour" in line
    assert bad.read_text() == "my-model:\n  architecture: gmm\n  colour: red\n"


def test_plugins_and_doctor():
    plugins = run("plugins", "--json")
    assert plugins.returncode == 0
    assert {"name": "zoo-core", "status": "ok"}.items() <= json.loads(plugins.stdout)[0].items()
    doctor = run("doctor", "--json", env={"ZOO_NETWORK": "never"})
    assert doctor.returncode == 0, doctor.stderr
    report = json.loads(doctor.stdout)
    assert report["network"] == "never" and report["models"] >= 1
    assert report["versions"]["torch"].startswith("2.")
    assert report["devices"][0].startswith("cpu")
    assert "network policy" in run("doctor").stdout


def test_download_bundled_and_version():
    result = run("download", "gmm-ring8")
    assert result.returncode == 0 and "gmm-ring8.safetensors" in result.stdout
    assert zoo.__version__ in run("--version").stdout


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("zoo")
    result = subprocess.run([str(script), "list"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "gmm-ring8" in result.stdout


@pytest.mark.parametrize(
    ("env", "shown"),
    [({"ZOO_NETWORK": "sometimes"}, "ZOO_NETWORK='sometimes'"),
     ({"HF_HUB_OFFLINE": "maybe"}, "HF_HUB_OFFLINE='maybe'")],
)  # fmt: skip
def test_invalid_environment_setting_is_one_line_error(env, shown):
    result = run("list", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: invalid environment setting " + shown)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr

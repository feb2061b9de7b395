"""The zoo-core wheel: it ships registry.yaml and the bundled weights, and works installed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Build from a copy of the checkout's files, so the build leaves nothing in it.
    source = tmp_path_factory.mktemp("source")
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
        text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in listed:
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_symlink():
            target.symlink_to(os.readlink(ROOT / name))
        elif (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(out)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (found,) = out.glob("zoo_core-*.whl")
    return found


def test_wheel_ships_registry_and_bundled_weights(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        shipped = yaml.safe_load(archive.read("zoo_core/registry.yaml"))
        weights = archive.read("zoo_core/builtin/gmm-ring8.safetensors")
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt")))
    assert shipped == yaml.safe_load((ROOT / "registry.yaml").read_text())
    assert hashlib.sha256(weights).hexdigest() == shipped["gmm-ring8"]["weights"]["sha256"]
    assert "Name: zoo-core" in metadata
    assert b"zoo = zoo_core.cli:main" in entry_points
    # The evaluation protocols and the bundled feature extractor with its card.
    protocols = {n.removeprefix("zoo_core/protocols/") for n in names if "/protocols/" in n}
    assert {f.name for f in (ROOT / "zoo_core" / "protocols").glob("*.yaml")} == protocols
    card = json.loads(archive_read(wheel, "zoo_core/builtin/fashion-net.json"))
    net = archive_read(wheel, "zoo_core/builtin/fashion-net.safetensors")
    assert hashlib.sha256(net).hexdigest() == card["sha256"]


def archive_read(wheel, name: str) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(name)


def test_installed_wheel_lists_loads_and_samples(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    code = (
        "import zoo_core, sys; assert zoo_core.__file__.startswith(sys.argv[1]), zoo_core.__file__;"
        "m = zoo_core.load('gmm-ring8'); print(zoo_core.list_models(), m.sample(3, seed=0).shape);"
        "from zoo_core.protocol import list_protocols;"
        "from zoo_core.evaluation.extractors import get_extractor;"
        "print(len(list_protocols()), get_extractor('fashion-net').feature_dim)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "'gmm-ring8'" in result.stdout and "torch.Size([3, 2])" in result.stdout
    assert f"{len(list((ROOT / 'zoo_core' / 'protocols').glob('*.yaml')))} 128" in result.stdout

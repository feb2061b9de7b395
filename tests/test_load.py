"""``zoo.load``: the bundled model, ``weights=`` files and folders, and every way they break."""

from __future__ import annotations

import hashlib
import json
import math
import sys
import uuid
from pathlib import Path

import pytest
import torch
import yaml

import zoo_core
from zoo_core.builtin.gmm import GaussianMixture
from zoo_core.errors import (
    ChecksumMismatchError,
    ConfigError,
    CorruptWeightsError,
    NonFiniteWeightsError,
    StateDictMismatchError,
    UnsafeFormatError,
    WeightsNotFoundError,
)
from zoo_core.weights import encode_safetensors
from zoo_core.weights.sources import bundled_files

RING = "gmm-ring8"


def pacgan_ring() -> dict[str, torch.Tensor]:
    """PacGAN's ring (arXiv 1712.04086, section 5.1), in closed form: eight equal-weight
    Gaussians with means (cos 2 pi i / 8, sin 2 pi i / 8) and standard deviation 0.01."""
    angles = [2 * math.pi * i / 8 for i in range(8)]
    return {
        "logits": torch.zeros(8),
        "means": torch.tensor([[math.cos(a), math.sin(a)] for a in angles]),
        "log_scales": torch.full((8, 2), math.log(0.01)),
    }


def assert_state(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    assert set(state) == set(expected)
    for name, tensor in expected.items():
        assert state[name].dtype == tensor.dtype, name
        assert torch.equal(state[name], tensor), name


def fingerprint(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots`` (files or folders)."""
    found = {}
    for root in roots:
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def register(monkeypatch, path: Path, cards: dict[str, dict]) -> None:
    path.write_text(yaml.safe_dump(cards))
    monkeypatch.setenv("ZOO_REGISTRY", str(path))


def gmm_card(weights: dict, config: dict | None = None) -> dict:
    return {
        "architecture": "gmm",
        "plugin": "zoo-core",
        "family": "mixture",
        "modality": "points",
        "dataset": "ring8",
        "config": config or {"components": 8, "dim": 2},
        "weights": weights,
    }


# ------------------------------------------------------------------------ the bundled ring
def test_bundled_ring_is_pacgans_closed_form():
    model = zoo_core.load(RING)
    assert_state(model, pacgan_ring())
    assert isinstance(model, GaussianMixture) and not model.training
    assert model.card.id == RING and model.device == torch.device("cpu")
    points = model.sample(4000, seed=0)  # (N, 2)
    nearest = torch.cdist(points, pacgan_ring()["means"]).min(dim=1)
    assert nearest.values.max() < 0.06  # six standard deviations
    assert set(nearest.indices.tolist()) == set(range(8))


def test_load_moves_to_the_requested_dtype_after_loading():
    model = zoo_core.load(RING, dtype=torch.float64)
    expected = {name: t.double() for name, t in pacgan_ring().items()}
    assert_state(model, expected)


def test_download_of_the_bundled_model_names_its_file():
    paths = zoo_core.download(RING)
    assert list(paths) == ["model.safetensors"]
    assert paths["model.safetensors"].name == "gmm-ring8.safetensors"
    assert paths["model.safetensors"].is_file()


# ------------------------------------------------------------------- weights= that break
def bundled_ring_file() -> Path:
    card = zoo_core.model_card(RING)
    return bundled_files(card.weights).files["model.safetensors"]


def write_state(path: Path, state: dict[str, torch.Tensor]) -> Path:
    path.write_bytes(encode_safetensors(state))
    return path


def broken(kind: str, folder: Path) -> Path:
    """A ``weights=`` argument for ``gmm-ring8`` that is wrong in one way."""
    state = pacgan_ring()
    if kind == "renamed tensor":
        state["mu"] = state.pop("means")
    elif kind == "extra tensor":
        state["extra.weight"] = torch.ones(3)
    elif kind == "wrong shapes":
        state["means"] = torch.zeros(8, 3)
        state["log_scales"] = torch.zeros(8, 3)
    elif kind == "nan":
        state["means"][3, 1] = float("nan")
    elif kind == "infinities":
        state["log_scales"][0, 0] = float("inf")
        state["logits"][2] = float("-inf")
    elif kind == "truncated":
        path = write_state(folder / "model.safetensors", state)
        path.write_bytes(path.read_bytes()[:-10])
        return path
    elif kind == "missing file":
        return folder / "nothing.safetensors"
    elif kind == "folder without weights":
        (folder / "config.json").write_text('{"components": 8, "dim": 2}')
        return folder
    return write_state(folder / "model.safetensors", state)


BROKEN = {
    "renamed tensor": StateDictMismatchError,
    "extra tensor": StateDictMismatchError,
    "wrong shapes": StateDictMismatchError,
    "nan": NonFiniteWeightsError,
    "infinities": NonFiniteWeightsError,
    "truncated": CorruptWeightsError,
    "missing file": WeightsNotFoundError,
    "folder without weights": WeightsNotFoundError,
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_weights_raise_one_line_and_touch_nothing(tmp_path, kind):
    folder = tmp_path / "weights"
    folder.mkdir()
    weights = broken(kind, folder)
    before = fingerprint(tmp_path, bundled_ring_file())
    with pytest.raises(BROKEN[kind]) as info:
        zoo_core.load(RING, weights=weights)
    assert type(info.value) is BROKEN[kind]
    message = str(info.value)
    assert "\n" not in message
    assert str(weights) in message
    assert fingerprint(tmp_path, bundled_ring_file()) == before
    error = info.value
    if kind == "renamed tensor":
        assert (error.missing, error.unexpected, error.mismatched) == (["means"], ["mu"], [])
        assert "missing means" in message and "unexpected mu" in message
    elif kind == "extra tensor":
        assert (error.missing, error.unexpected) == ([], ["extra.weight"])
        assert "extra.weight" in message
    elif kind == "wrong shapes":
        assert error.mismatched == [
            ("log_scales", (8, 3), (8, 2)),
            ("means", (8, 3), (8, 2)),
        ]
        assert "means (file (8, 3) vs model (8, 2))" in message
        assert "log_scales (file (8, 3) vs model (8, 2))" in message
    elif kind == "nan":
        assert error.names == ["means"] and "means" in message
    elif kind == "infinities":
        assert error.names == ["log_scales", "logits"]
        assert "log_scales" in message and "logits" in message


# ------------------------------------------------------------ a bundled file of a package
@pytest.fixture
def package(tmp_path, monkeypatch):
    """An importable package (on sys.path for this test) holding ``weights/ring.safetensors``."""
    name = f"zoo_weights_test_{uuid.uuid4().hex[:8]}"
    root = tmp_path / "site" / name
    (root / "weights").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    write_state(root / "weights" / "ring.safetensors", pacgan_ring())
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield name, root / "weights" / "ring.safetensors"
    sys.modules.pop(name, None)


def test_bundled_file_of_a_package_loads_when_its_hash_matches(tmp_path, monkeypatch, package):
    name, file = package
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    register(
        monkeypatch,
        tmp_path / "extra.yaml",
        {"gmm-pkg": gmm_card({"bundled": f"{name}:weights/ring.safetensors", "sha256": digest})},
    )
    assert_state(zoo_core.load("gmm-pkg"), pacgan_ring())


def test_corrupted_bundled_file_is_a_checksum_mismatch(tmp_path, monkeypatch, package):
    name, file = package
    recorded = hashlib.sha256(file.read_bytes()).hexdigest()
    data = bytearray(file.read_bytes())
    data[-5] ^= 0x04  # one bit of one float: still a valid safetensors file
    file.write_bytes(bytes(data))
    register(
        monkeypatch,
        tmp_path / "extra.yaml",
        {"gmm-pkg": gmm_card({"bundled": f"{name}:weights/ring.safetensors", "sha256": recorded})},
    )
    before = fingerprint(tmp_path)
    with pytest.raises(ChecksumMismatchError) as info:
        zoo_core.load("gmm-pkg")
    assert str(file) in str(info.value) and "\n" not in str(info.value)
    assert info.value.expected == recorded
    assert info.value.actual == hashlib.sha256(bytes(data)).hexdigest()
    assert fingerprint(tmp_path) == before


@pytest.mark.parametrize(
    ("bundled", "says"),
    [("zoo_no_such_package_xyz:w.safetensors", "not installed"), (None, "missing")],
)
def test_bundled_file_that_is_not_there(tmp_path, monkeypatch, package, bundled, says):
    name, _ = package
    bundled = bundled or f"{name}:weights/other.safetensors"
    card = gmm_card({"bundled": bundled, "sha256": "0" * 64})
    register(monkeypatch, tmp_path / "extra.yaml", {"gmm-pkg": card})
    with pytest.raises(WeightsNotFoundError, match=says):
        zoo_core.load("gmm-pkg")


# --------------------------------------------------------------------------------- pickle
class WritesSentinel:
    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').close()",))


def test_pickle_checkpoints_need_a_card_that_allows_them(tmp_path, monkeypatch):
    sentinel = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"means": WritesSentinel(sentinel), "logits": torch.zeros(8)}, evil)
    good = tmp_path / "model.pt"
    torch.save(pacgan_ring(), good)
    pickled = gmm_card({"hub": "org/ring", "files": ["model.pt"], "allow_pickle": True})
    register(monkeypatch, tmp_path / "extra.yaml", {"gmm-pickled": pickled})
    for weights in (evil, good):  # gmm-ring8's card does not allow pickle
        with pytest.raises(UnsafeFormatError, match="does not allow"):
            zoo_core.load(RING, weights=weights)
    with pytest.raises(UnsafeFormatError, match="weights-only unpickler refused"):
        zoo_core.load("gmm-pickled", weights=evil)
    assert not sentinel.exists()
    assert_state(zoo_core.load("gmm-pickled", weights=good), pacgan_ring())


# ------------------------------------------------------------------------------ round trip
def trained_looking(components: int = 5, dim: int = 3) -> GaussianMixture:
    model = GaussianMixture.from_config({"components": components, "dim": dim})
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return model


def test_save_pretrained_round_trips_bit_exact(tmp_path):
    model = trained_looking()
    folder = model.save_pretrained(tmp_path / "saved")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    reference = model.sample(500, seed=11)
    # The folder's config (5 x 3) wins over the card's (8 x 2) with weights=folder.
    for loaded in (zoo_core.from_pretrained(folder), zoo_core.load(RING, weights=folder)):
        assert isinstance(loaded, GaussianMixture) and not loaded.training
        assert loaded.config == model.config
        assert_state(loaded, model.state_dict())
        assert torch.equal(loaded.sample(500, seed=11), reference)
    assert GaussianMixture.from_pretrained(folder).config == model.config


def test_loaded_model_round_trips_with_its_card(tmp_path):
    model = zoo_core.load(RING)
    folder = model.save_pretrained(tmp_path / "ring")
    again = zoo_core.load(RING, weights=folder)
    assert_state(again, pacgan_ring())
    assert torch.equal(again.sample(300, seed=5), model.sample(300, seed=5))
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n", 2)[1])
    assert front["library_name"] == "zoo"
    assert front["license"] == "apache-2.0" and front["datasets"] == ["ring8"]  # Hub ids
    assert "mixture" in front["tags"] and "gmm" in front["tags"]


def test_readme_front_matter_of_a_cardless_model(tmp_path):
    folder = trained_looking().save_pretrained(tmp_path / "m")
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n", 2)[1])
    assert isinstance(front, dict) and front["library_name"] == "zoo"


def test_config_of_another_architecture_is_refused(tmp_path):
    folder = trained_looking().save_pretrained(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["architecture"] = "ddpm-unet"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="'ddpm-unet'.*'gmm'"):
        zoo_core.load(RING, weights=folder)


def test_single_file_weights_read_the_cards_config_file_beside_them(tmp_path, monkeypatch):
    model = trained_looking()
    folder = model.save_pretrained(tmp_path / "m")
    register(monkeypatch, tmp_path / "extra.yaml", {"gmm-file": gmm_card(None, "config.json")})
    loaded = zoo_core.load("gmm-file", weights=folder / "model.safetensors")
    assert_state(loaded, model.state_dict())
    (folder / "config.json").unlink()
    with pytest.raises(WeightsNotFoundError, match="config.json"):
        zoo_core.load("gmm-file", weights=folder / "model.safetensors")


def test_default_dtype_setting(monkeypatch):
    monkeypatch.setenv("ZOO_DTYPE", "float64")
    model = zoo_core.load(RING)
    assert model.means.dtype == torch.float64
    assert model.sample(3, seed=0).dtype == torch.float64
    monkeypatch.setenv("ZOO_DTYPE", "float8")
    with pytest.raises(ConfigError, match="ZOO_DTYPE='float8'"):
        zoo_core.load(RING)


def test_from_pretrained_finds_the_class_through_the_plugins_and_the_interface_does_not(tmp_path):
    from zoo_core.errors import ConfigError, UnknownArchitectureError
    from zoo_core.generator import Generator

    folder = trained_looking().save_pretrained(tmp_path / "saved")
    with pytest.raises(TypeError, match=r"zoo.from_pretrained\(directory\)"):
        Generator.from_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "architecture": "gmn"}))
    with pytest.raises(UnknownArchitectureError, match="did you mean 'gmm'"):
        zoo_core.from_pretrained(folder)
    del config["architecture"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="no 'architecture' field"):
        zoo_core.from_pretrained(folder)

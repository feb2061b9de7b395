"""Weights sources: the Hugging Face cache (offline and cache-first), checksums, pickle."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import huggingface_hub.constants
import pytest
import torch
import yaml

import zoo_core
from zoo_core.builtin.gmm import GaussianMixture
from zoo_core.errors import (
    ChecksumMismatchError,
    UnsafeFormatError,
    WeightsError,
    WeightsUnavailableError,
)
from zoo_core.registry import model_card
from zoo_core.testing import build_hub_cache
from zoo_core.weights import formats, sources

REPO = "org/name"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FILES = ["config.json", "model.safetensors"]
MODEL_ID = "gmm-hubtest"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def written_model(directory: Path) -> tuple[GaussianMixture, dict[str, bytes]]:
    """A 3-component 2-D mixture with distinct parameters, saved with save_pretrained."""
    model = GaussianMixture.from_config({"components": 3, "dim": 2})
    with torch.no_grad():
        model.logits.copy_(torch.tensor([0.25, -1.5, 2.0]))
        model.means.copy_(torch.tensor([[1.0, 2.0], [-3.0, 0.5], [0.125, -7.0]]))
        model.log_scales.copy_(torch.tensor([[-1.0, -2.0], [0.5, -0.25], [-3.0, 1.0]]))
    model.save_pretrained(directory)
    return model, {name: (directory / name).read_bytes() for name in FILES}


def register(monkeypatch, path: Path, cards: dict[str, dict]) -> None:
    path.write_text(yaml.safe_dump(cards))
    monkeypatch.setenv("ZOO_REGISTRY", str(path))


def hub_card(revision: str, files: dict[str, bytes], **weights) -> dict:
    return {
        "architecture": "gmm",
        "plugin": "zoo-core",
        "family": "mixture",
        "modality": "points",
        "dataset": "ring8",
        "config": "config.json",
        "weights": {
            "hub": REPO,
            "revision": revision,
            "files": list(files),
            "format": "native",
            "sha256": {name: sha256(data) for name, data in files.items()},
            **weights,
        },
    }


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The model written to a hand-built HF cache that ZOO_HUB_CACHE points at."""
    model, files = written_model(tmp_path / "written")
    cache = tmp_path / "hub"
    snapshot = build_hub_cache(cache, REPO, COMMIT, files)
    monkeypatch.setenv("ZOO_HUB_CACHE", str(cache))
    # huggingface_hub reads HF_HUB_OFFLINE once, when first imported (maybe during a test
    # that set it): keep it online here, so that only the zoo keeps it off the network.
    # It also fetches an "agent registry" once per process when it builds request headers,
    # even for local_files_only lookups: forget it, so that every test would see that call.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    agent = sys.modules.get("huggingface_hub.utils._detect_agent")  # absent: not fetched yet
    if agent is not None:
        monkeypatch.setattr(agent, "_registry", None, raising=False)
    return SimpleNamespace(
        model=model, files=files, snapshot=snapshot, registry=tmp_path / "extra.yaml"
    )


def assert_same_parameters(loaded, expected) -> None:
    got, want = loaded.state_dict(), expected.state_dict()
    assert set(got) == set(want)
    for name in want:
        assert torch.equal(got[name], want[name]), name


@pytest.mark.parametrize("revision", ["main", COMMIT])
def test_offline_load_from_the_cache_by_branch_and_commit(hub, monkeypatch, no_network, revision):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    register(monkeypatch, hub.registry, {MODEL_ID: hub_card(revision, hub.files)})
    model = zoo_core.load(MODEL_ID)
    assert_same_parameters(model, hub.model)
    assert model.config.components == 3 and model.card.id == MODEL_ID and not model.training
    assert no_network.attempts == []


def test_if_missing_policy_uses_the_cache_without_network(hub, monkeypatch, no_network):
    monkeypatch.setenv("ZOO_NETWORK", "if-missing")
    register(monkeypatch, hub.registry, {MODEL_ID: hub_card("main", hub.files)})
    assert_same_parameters(zoo_core.load(MODEL_ID), hub.model)
    assert_same_parameters(zoo_core.load(MODEL_ID, revision=COMMIT), hub.model)
    assert no_network.attempts == []


def test_revision_argument_overrides_the_card(hub, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    register(monkeypatch, hub.registry, {MODEL_ID: hub_card("f" * 40, hub.files)})
    with pytest.raises(WeightsUnavailableError, match="f" * 40):
        zoo_core.load(MODEL_ID)  # the card's pinned commit is not in the cache
    assert_same_parameters(zoo_core.load(MODEL_ID, revision=COMMIT), hub.model)
    assert no_network.attempts == []


def test_download_returns_the_cached_paths(hub, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    register(monkeypatch, hub.registry, {MODEL_ID: hub_card(COMMIT, hub.files)})
    paths = zoo_core.download(MODEL_ID)
    assert paths == {name: hub.snapshot / name for name in FILES}
    assert {name: path.read_bytes() for name, path in paths.items()} == hub.files
    assert no_network.attempts == []


@pytest.mark.parametrize(
    ("env", "reason"), [("HF_HUB_OFFLINE", "HF_HUB_OFFLINE"), ("ZOO_NETWORK", "ZOO_NETWORK=never")]
)
@pytest.mark.parametrize("revision", ["main", COMMIT])
def test_offline_miss_names_repo_revision_and_file(
    hub, monkeypatch, no_network, env, reason, revision
):
    monkeypatch.setenv(env, "1" if env == "HF_HUB_OFFLINE" else "never")
    (hub.snapshot / "model.safetensors").unlink()
    register(monkeypatch, hub.registry, {MODEL_ID: hub_card(revision, hub.files)})
    for call in (zoo_core.load, zoo_core.download):
        with pytest.raises(WeightsUnavailableError) as info:
            call(MODEL_ID)
        message = str(info.value)
        assert f"model.safetensors of {REPO}@{revision}" in message
        assert f"zoo download {MODEL_ID}" in message and reason in message
        assert "\n" not in message
    assert no_network.attempts == []


def test_if_missing_policy_fetches_only_the_missing_file(hub, monkeypatch, no_network):
    """Cache first for every file; the Hub is asked only for the one that is missing.

    The Hub call is stubbed: huggingface_hub retries a refused connection for ~20 s.
    """
    monkeypatch.setenv("ZOO_NETWORK", "if-missing")
    (hub.snapshot / "model.safetensors").unlink()
    register(monkeypatch, hub.registry, {MODEL_ID: hub_card(COMMIT, hub.files)})
    calls = []

    def hf_hub_download(repo, filename, **kwargs):
        calls.append((repo, filename, kwargs.get("revision"), kwargs.get("local_files_only")))
        raise OSError("network blocked by the test")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    with pytest.raises(WeightsUnavailableError, match="download failed") as info:
        zoo_core.load(MODEL_ID)
    assert f"model.safetensors of {REPO}@{COMMIT}" in str(info.value)
    assert calls == [(REPO, "model.safetensors", COMMIT, None)]
    assert no_network.attempts == []  # the stub stands in for the one network call


@pytest.mark.parametrize("name", FILES)
def test_flipped_byte_in_a_cached_blob_is_caught_before_use(hub, monkeypatch, no_network, name):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    register(monkeypatch, hub.registry, {MODEL_ID: hub_card("main", hub.files)})
    blob = (hub.snapshot / name).resolve()
    assert blob.parent.name == "blobs"
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    assert blob.stat().st_size == len(hub.files[name])  # same size: only the hash can tell
    reads = []
    monkeypatch.setattr(formats, "read_safetensors", lambda path: reads.append(path))
    monkeypatch.setattr(sources, "read_config_file", lambda path: reads.append(path))
    for call in (zoo_core.load, zoo_core.download):
        with pytest.raises(ChecksumMismatchError) as info:
            call(MODEL_ID)
        assert f"{REPO}@main/{name}" in str(info.value)
        assert info.value.expected == sha256(hub.files[name])
        assert info.value.actual == sha256(bytes(data))
    assert reads == []
    assert no_network.attempts == []


def test_local_folder_laid_out_like_the_hub_source(hub, monkeypatch, no_network, tmp_path):
    register(monkeypatch, hub.registry, {MODEL_ID: hub_card(COMMIT, hub.files)})
    folder = tmp_path / "copy"
    folder.mkdir()
    for name, data in hub.files.items():
        (folder / name).write_bytes(data)
    assert_same_parameters(zoo_core.load(MODEL_ID, weights=folder), hub.model)
    data = bytearray(hub.files["model.safetensors"])
    data[-1] ^= 0x80
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="model.safetensors"):
        zoo_core.load(MODEL_ID, weights=folder)  # checked against the card, like the Hub
    assert no_network.attempts == []


def test_a_broken_cache_entry_is_a_weights_error(hub, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    register(monkeypatch, hub.registry, {MODEL_ID: hub_card("main", hub.files)})
    blob = (hub.snapshot / "model.safetensors").resolve()
    blob.unlink()  # a dangling snapshot link
    with pytest.raises(WeightsError) as info:
        zoo_core.load(MODEL_ID)
    assert "model.safetensors" in str(info.value) and "\n" not in str(info.value)
    assert no_network.attempts == []


# ------------------------------------------------------------------------------ pickle
class WritesSentinel:
    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').close()",))


def test_allowed_pickle_on_a_hub_source_still_refuses_code(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sentinel = tmp_path / "pwned"
    torch.save({"means": WritesSentinel(sentinel), "logits": torch.zeros(3)}, tmp_path / "x.pt")
    good = {"logits": torch.tensor([1.0, 2.0])}
    torch.save(good, tmp_path / "good.pt")
    files = {
        "model.pt": (tmp_path / "x.pt").read_bytes(),
        "good.pt": (tmp_path / "good.pt").read_bytes(),
    }
    cache = tmp_path / "hub"
    build_hub_cache(cache, REPO, COMMIT, files)
    monkeypatch.setenv("ZOO_HUB_CACHE", str(cache))
    card = hub_card(COMMIT, files, allow_pickle=True)
    register(monkeypatch, tmp_path / "extra.yaml", {MODEL_ID: card})
    resolved = sources.resolve_weights(model_card(MODEL_ID))
    assert resolved.allow_pickle
    assert torch.equal(resolved.tensors("good.pt")["logits"], good["logits"])
    with pytest.raises(UnsafeFormatError, match="model.pt"):
        resolved.tensors("model.pt")
    assert not sentinel.exists()
    assert no_network.attempts == []


def test_always_policy_asks_the_hub_even_for_cached_files(hub, monkeypatch, no_network):
    monkeypatch.setenv("ZOO_NETWORK", "always")
    register(monkeypatch, hub.registry, {MODEL_ID: hub_card(COMMIT, hub.files)})
    calls = []

    def hf_hub_download(repo, filename, **kwargs):
        calls.append(filename)
        return str(hub.snapshot / filename)  # what the Hub would confirm

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    assert_same_parameters(zoo_core.load(MODEL_ID), hub.model)
    assert calls == FILES


def test_pickle_only_native_hub_source_loads_when_allowed(hub, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    buffer = hub.snapshot.parent.parent / "state.pt"
    torch.save(hub.model.state_dict(), buffer)
    files = {"config.json": hub.files["config.json"], "model.pt": buffer.read_bytes()}
    build_hub_cache(hub.snapshot.parents[3] / "hub2", REPO, COMMIT, files)
    monkeypatch.setenv("ZOO_HUB_CACHE", str(hub.snapshot.parents[3] / "hub2"))
    card = hub_card(COMMIT, files)
    register(monkeypatch, hub.registry, {MODEL_ID: card})
    with pytest.raises(UnsafeFormatError, match="does not allow"):
        zoo_core.load(MODEL_ID)
    card["weights"]["allow_pickle"] = True
    register(monkeypatch, hub.registry, {MODEL_ID: card})
    assert_same_parameters(zoo_core.load(MODEL_ID), hub.model)
    assert no_network.attempts == []

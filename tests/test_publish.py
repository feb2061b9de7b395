"""``zoo push``: the folder it uploads is what ``save_pretrained`` writes, with the model
card the Hub reads; the registry card it prints loads the pushed weights back, bit for bit,
from a Hugging Face cache holding that commit, with sockets blocked. The Hub itself is
unreachable here: huggingface_hub's ``HfApi`` is replaced by a recorder of its calls."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

import zoo_core
from zoo_core import publish
from zoo_core.cli import cli
from zoo_core.errors import ConfigError
from zoo_core.testing import build_hub_cache

MODEL = "gmm-ring8"  # the core's own bundled model: no family plugin needed


class FakeHub:
    """Records create_repo and upload_folder, keeping a copy of the uploaded folder."""

    calls: list = []
    remote: Path | None = None
    oid = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, **kwargs):
        FakeHub.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        FakeHub.calls.append(("upload_folder", repo_id, kwargs))
        shutil.copytree(folder_path, FakeHub.remote)
        return type("CommitInfo", (), {"oid": FakeHub.oid})()


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    import huggingface_hub

    FakeHub.calls, FakeHub.remote = [], tmp_path / "remote"
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    return FakeHub


def test_the_dry_run_folder_is_save_pretrained_with_the_card(tmp_path):
    result = CliRunner().invoke(
        cli, ["push", MODEL, "--repo", "lab/gmm", "--dry-run", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out"
    card = zoo_core.model_card(MODEL)
    written = sorted(p.name for p in folder.iterdir())
    # training.json where the card records its training (gmm-ring8's does not)
    assert written == ["README.md", "config.json", "model.safetensors"] + (
        ["training.json"] if card.training else []
    )
    readme = (folder / "README.md").read_text()
    meta = yaml.safe_load(readme.split("---")[1])
    assert meta["library_name"] == "zoo" and meta["datasets"] == [card.dataset]
    assert meta["license"] == card.license.lower()
    assert f"# {MODEL}" in readme and card.description in readme
    original, again = zoo_core.load(MODEL), zoo_core.load(MODEL, weights=folder)
    for key, value in original.state_dict().items():
        assert torch.equal(value, again.state_dict()[key])


def test_push_uploads_one_commit_and_its_card_loads_the_weights_back_offline(
    fake_hub, tmp_path, monkeypatch, no_network
):
    card = publish.push(MODEL, "lab/gmm-ring8", private=True)
    assert [c[0] for c in fake_hub.calls] == ["create_repo", "upload_folder"]
    assert fake_hub.calls[0][2]["private"] is True and fake_hub.calls[0][2]["exist_ok"] is True
    weights = card["weights"]
    assert weights["hub"] == "lab/gmm-ring8" and weights["revision"] == fake_hub.oid
    assert weights["files"] == ["README.md", "config.json", "model.safetensors"]

    # the pushed files, as huggingface_hub would cache that commit
    files = {p.name: p.read_bytes() for p in fake_hub.remote.iterdir()}
    build_hub_cache(tmp_path / "hub", "lab/gmm-ring8", fake_hub.oid, files)
    registry = tmp_path / "extra.yaml"
    registry.write_text(yaml.safe_dump({"gmm-ring8-pushed": card}))
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    monkeypatch.setenv("ZOO_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("ZOO_NETWORK", "never")
    pushed, original = zoo_core.load("gmm-ring8-pushed"), zoo_core.load(MODEL)
    assert pushed.weights_sha256["model.safetensors"] == weights["sha256"]["model.safetensors"]
    for key, value in original.state_dict().items():
        assert torch.equal(value, pushed.state_dict()[key])
    assert torch.equal(pushed.sample(5, seed=0), original.sample(5, seed=0))
    assert no_network == []


def test_the_command_prints_the_registry_card(fake_hub):
    result = CliRunner().invoke(cli, ["push", MODEL, "--repo", "lab/gmm", "--message", "v1"])
    assert result.exit_code == 0, result.output
    assert fake_hub.calls[1][2]["commit_message"] == "v1"
    printed = yaml.safe_load(result.output.split("registry card for these weights:")[1])
    assert printed[MODEL]["weights"]["revision"] == fake_hub.oid


@pytest.mark.parametrize("repo", ["gmm", "lab/", "/gmm", "lab/gmm/extra", "lab/../gmm", "la b/g"])
def test_a_bad_repo_id_is_refused_before_anything_is_loaded(repo, fake_hub):
    with pytest.raises(ConfigError, match="is not a Hub repository id; give ORG/NAME"):
        publish.push(MODEL, repo)
    assert fake_hub.calls == []


def test_a_dry_run_into_a_folder_with_files_is_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    args = ["push", MODEL, "--repo", "lab/gmm", "--dry-run", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "is not empty; give a new folder" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]

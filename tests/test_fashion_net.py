"""The bundled ``fashion-net`` feature extractor: its weights are the ones its card pins, it
classifies Fashion-MNIST as well as the card says, it loads through ``get_extractor``, and
its training script writes a loadable pair of files."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from pydantic import ValidationError

from zoo_core.data import load_dataset
from zoo_core.errors import ChecksumMismatchError, ConfigError, ExtractorUnavailableError
from zoo_core.evaluation.extractors import fashion_net as fn
from zoo_core.evaluation.extractors import get_extractor
from zoo_core.weights.formats import read_tensors
from zoo_core.weights.sources import sha256_file
from zoo_core.weights.state import load_state

MAX_BYTES = 10 * 1024 * 1024


def bundled_card() -> dict:
    return json.loads((fn.bundle_dir() / fn.CARD_NAME).read_text(encoding="utf-8"))


def test_the_bundled_card_pins_the_bundled_weights():
    weights = fn.bundle_dir() / fn.WEIGHTS_NAME
    card = bundled_card()
    assert card["id"] == "fashion-net"
    assert card["sha256"] == sha256_file(weights)
    assert weights.stat().st_size <= MAX_BYTES
    assert card["training"]["command"].startswith(
        "python -m zoo_core.evaluation.extractors.fashion_net --out zoo_core/builtin"
    )
    assert card["training"]["limit"] is None


def test_the_bundled_net_classifies_the_test_split_as_its_card_says():
    test = load_dataset("fashion-mnist", split="test")
    model = get_extractor("fashion-net")
    correct = 0
    with torch.inference_mode():
        for images, labels in zip(test.x.split(1000), test.y.split(1000), strict=True):
            correct += int((model(images)["logits"].argmax(dim=1) == labels).sum())
    accuracy = correct / len(test)
    assert len(test) == 10_000
    assert accuracy >= 0.90
    assert accuracy == pytest.approx(bundled_card()["test_accuracy"], abs=1e-4)


def test_get_extractor_gives_the_frozen_net_with_its_declared_outputs():
    model = get_extractor("fashion-net")
    card = bundled_card()
    assert isinstance(model, fn.FashionNet)
    assert (model.id, model.weights_sha256) == ("fashion-net", card["sha256"])
    assert (model.input_size, model.input_channels) == ((28, 28), 1)
    assert (model.feature_dim, model.num_classes) == (card["feature_dim"], 10)
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())

    images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    out = model(images)
    assert out["features"].shape == (64, model.feature_dim)
    assert out["logits"].shape == (64, 10)
    assert out["features"].dtype == out["logits"].dtype == torch.float32
    alone = model(images[17:18])
    torch.testing.assert_close(alone["features"], out["features"][17:18], rtol=0, atol=1e-5)
    torch.testing.assert_close(model(images)["features"], out["features"], rtol=0, atol=0)


def copy_bundle(tmp_path, monkeypatch):
    for name in (fn.WEIGHTS_NAME, fn.CARD_NAME):
        shutil.copy(fn.bundle_dir() / name, tmp_path / name)
    monkeypatch.setattr(fn, "bundle_dir", lambda: tmp_path)
    return tmp_path / fn.WEIGHTS_NAME


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    weights = copy_bundle(tmp_path, monkeypatch)
    fn.load_fashion_net()  # the intact copy loads
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of the last tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="reinstall zoo-core"):
        get_extractor("fashion-net")


def test_missing_weights_say_to_reinstall(tmp_path, monkeypatch):
    copy_bundle(tmp_path, monkeypatch).unlink()
    with pytest.raises(ExtractorUnavailableError, match="reinstall zoo-core") as caught:
        get_extractor("fashion-net")
    assert "\n" not in str(caught.value)


def test_the_config_refuses_unknown_options():
    with pytest.raises(ValidationError):
        fn.FashionNetConfig(hidden=256)


def test_augment_shifts_and_mirrors_each_image():
    images = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    out = fn.augment(images, torch.Generator().manual_seed(2))
    p = fn.CROP_PADDING
    padded = torch.nn.functional.pad(images, (p, p, p, p))
    flips = 0
    for image, crop in zip(padded, out, strict=True):
        candidates = [
            image[:, i : i + 28, j : j + 28] for i in range(2 * p + 1) for j in range(2 * p + 1)
        ]
        if any(torch.equal(crop, c) for c in candidates):
            continue
        assert any(torch.equal(crop.flip(-1), c) for c in candidates)
        flips += 1
    assert 0 < flips < 32
    assert not torch.equal(out, images)


def test_training_writes_weights_and_a_card_that_pins_them(tmp_path):
    rng = torch.get_rng_state()
    card = fn.train_fashion_net(tmp_path, epochs=1, limit=2000)
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's RNG is left alone

    weights = tmp_path / fn.WEIGHTS_NAME
    assert json.loads((tmp_path / fn.CARD_NAME).read_text(encoding="utf-8")) == card
    assert card["sha256"] == sha256_file(weights)
    model = fn.FashionNet(fn.FashionNetConfig.model_validate(card["config"]))
    load_state(model, read_tensors(weights), str(weights))

    bundled, training = bundled_card(), card["training"]
    assert card["config"] == fn.FashionNetConfig().model_dump(mode="json") == bundled["config"]
    assert (training["examples"], training["limit"], training["epochs"]) == (2000, 2000, 1)
    assert (training["seed"], training["batch_size"], training["lr"]) == (
        0,
        fn.DEFAULT_BATCH_SIZE,
        fn.DEFAULT_LR,
    )
    assert training["fingerprint"] == bundled["training"]["fingerprint"]
    assert card["test"] == bundled["test"]  # the whole test split, limit or not
    assert 0.3 < card["test_accuracy"] < 1.0  # learnt something in 16 steps


@pytest.mark.parametrize("options", [{"epochs": 0}, {"epochs": 1, "limit": 0}])
def test_training_refuses_empty_runs(tmp_path, options):
    with pytest.raises(ConfigError):
        fn.train_fashion_net(tmp_path, **options)
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_training_is_reproducible(tmp_path):
    first = fn.train_fashion_net(tmp_path / "a", epochs=1, limit=300, batch_size=100)
    second = fn.train_fashion_net(tmp_path / "b", epochs=1, limit=300, batch_size=100)
    assert first["sha256"] == second["sha256"]
    third = fn.train_fashion_net(tmp_path / "c", epochs=1, limit=300, batch_size=100, seed=1)
    assert third["sha256"] != first["sha256"]

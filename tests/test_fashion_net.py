"""The bundled ``fashion-net`` feature extractor: its weights are the ones its card pins, it
classifies Fashion-MNIST as well as the card says, it loads through ``get_extractor``, and
its recipe trains it through the shared loop, with the data order the bundled weights were
trained with, into a loadable pair of files."""

from __future__ import annotations

import json
import math
import shutil
from importlib import resources

import pytest
import torch
from pydantic import ValidationError

from zoo_core.builtin.extractors import fashion_net as fn
from zoo_core.builtin.extractors import fashion_net_trainer as fnt
from zoo_core.data import load_dataset
from zoo_core.errors import ChecksumMismatchError, ConfigError, ExtractorUnavailableError
from zoo_core.evaluation.extractors import get_extractor
from zoo_core.training import load_recipe, train
from zoo_core.weights.formats import read_tensors
from zoo_core.weights.sources import sha256_file
from zoo_core.weights.state import load_state

MAX_BYTES = 10 * 1024 * 1024
RECIPE = resources.files("zoo_core") / "recipes" / "fashion-net.yaml"


def bundled_card() -> dict:
    return json.loads((fn.bundle_dir() / fn.CARD_NAME).read_text(encoding="utf-8"))


def test_the_bundled_card_pins_the_bundled_weights_and_names_its_recipe():
    weights = fn.bundle_dir() / fn.WEIGHTS_NAME
    card = bundled_card()
    assert card["id"] == "fashion-net"
    assert card["sha256"] == sha256_file(weights)
    assert weights.stat().st_size <= MAX_BYTES
    # The recipe that trained it, as the loop recorded it, is the shipped one.
    assert card["training"]["recipe"] == load_recipe(RECIPE).model_dump(mode="json")
    assert card["training"]["steps"] == load_recipe(RECIPE).train.steps


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


@pytest.mark.numerics
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
    out = fnt.augment(images, *fnt.draw_augmentation(32, torch.Generator().manual_seed(2)))
    p = fnt.CROP_PADDING
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


def old_stream(size: int, batch_size: int, seed: int, epochs: int):
    """The order of the loop fashion-net was first trained with (the reference): one
    generator; per epoch a permutation split into batches (the last one partial); per batch
    its crop offsets, then its flips."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for index in torch.randperm(size, generator=generator).split(batch_size):
            dy, dx = torch.randint(0, 2 * fnt.CROP_PADDING + 1, (2, len(index)),
                                   generator=generator)  # fmt: skip
            flip = torch.rand(len(index), generator=generator) < 0.5
            yield list(zip(index.tolist(), dy.tolist(), dx.tolist(), flip.tolist(), strict=True))


def test_the_stream_draws_the_original_order_from_any_start():
    size, batch, seed = 50, 16, 3  # 4 batches an epoch, the last one of 2
    reference = list(old_stream(size, batch, seed, epochs=3))
    assert [len(b) for b in reference[:4]] == [16, 16, 16, 2]
    for start in (0, 1, 4, 7):
        stream = iter(fnt.EpochStream(size, batch, seed, start))
        assert [next(stream) for _ in range(12 - start)] == reference[start:]
    other = iter(fnt.EpochStream(size, batch, seed + 1, 0))
    assert next(other) != reference[0]


def train_quick(tmp_path, name, **sets):
    overrides = {"train.steps": 16, "train.checkpoint_every": 8, **sets}
    return train(load_recipe(RECIPE, overrides), tmp_path / name, progress=False)


def test_the_recipe_writes_weights_and_a_card_that_pins_them(tmp_path):
    result = train_quick(tmp_path, "run")
    card = json.loads((result.model_dir / fn.CARD_NAME).read_text(encoding="utf-8"))
    weights = result.model_dir / fn.WEIGHTS_NAME
    assert card["sha256"] == sha256_file(weights)
    model = fn.FashionNet(fn.FashionNetConfig.model_validate(card["config"]))
    load_state(model, read_tensors(weights), str(weights))

    bundled = bundled_card()
    assert card["config"] == fn.FashionNetConfig().model_dump(mode="json") == bundled["config"]
    assert card["training"]["steps"] == 16 and card["training"]["recipe"]["train"]["steps"] == 16
    assert card["training"]["dataset_fingerprint"] == bundled["training"]["dataset_fingerprint"]
    assert card["test"] == bundled["test"]  # the whole test split
    assert 0.3 < card["test_accuracy"] < 1.0  # learnt something in 16 steps
    # The recipe's schedule is torch's OneCycleLR (the bundled weights' schedule), exactly.
    (last,) = [json.loads(line) for line in (result.out / "metrics.jsonl").read_text().splitlines()]
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=0.002)
    reference = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.002, total_steps=16)
    for _ in range(15):  # to the lr of the 16th step
        optimizer.step()
        reference.step()
    assert last["step"] == 16 and last["model/lr"] == optimizer.param_groups[0]["lr"]


def test_the_trainer_refuses_other_data_and_several_processes(tmp_path):
    with pytest.raises(ConfigError, match="fashion-mnist"):
        train(load_recipe(RECIPE, {"dataset": "digits"}), tmp_path / "a", progress=False)
    trainer = fnt.FashionNetTrainer(fn.FashionNet(fn.FashionNetConfig()), None)
    with pytest.raises(ConfigError, match="one process"):
        trainer.batch_order(60000, 128, 0, 0, rank=0, world=2)


@pytest.mark.slow
def test_the_recipe_is_reproducible_and_resumes_exactly(tmp_path):
    first = train_quick(tmp_path, "a")
    second = train_quick(tmp_path, "b")
    sha = sha256_file(first.model_dir / fn.WEIGHTS_NAME)
    assert sha == sha256_file(second.model_dir / fn.WEIGHTS_NAME)
    other = train_quick(tmp_path, "c", **{"train.seed": 1})
    assert sha256_file(other.model_dir / fn.WEIGHTS_NAME) != sha
    # stopped after 5 steps (a checkpoint), then resumed: the same weights
    recipe = load_recipe(RECIPE, {"train.steps": 16, "train.checkpoint_every": 8})
    stopped = train(recipe, tmp_path / "d", stop_after=5, progress=False)
    assert stopped.status == "stopped"
    resumed = train(recipe, tmp_path / "d", resume=True, progress=False)
    assert sha256_file(resumed.model_dir / fn.WEIGHTS_NAME) == sha
    assert not math.isnan(resumed.final_loss)

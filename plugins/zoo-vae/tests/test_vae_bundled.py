"""The bundled VAEs, parametrized over the registry's bundled `vae` models: each loads offline
with its checksum, is no larger than 10 MB, was trained by the recipe its card names, and
keeps the figures measured when it was committed (docs/vae.md): its likelihood bound on the
test split, its imputation against a mean fill, and samples of every class."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import zoo_core
from zoo_core.card import BundledWeights
from zoo_core.data import load_dataset
from zoo_core.training.config import load_recipe

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[3]
VAES = [
    m
    for m in zoo_core.list_models(family="vae")
    if isinstance(zoo_core.model_card(m).weights, BundledWeights)
]
# Measured on the bundled weights when they were committed, on the first 200 test images:
# bits/dim of log_prob (conv-vae: k = 10, seed 0), and the squared error of inpaint (each
# model's default method) on the bottom half over that of the train split's mean image.
RECORDED = {
    "vae-fashion": (3.2440, 0.328),
    "beta-vae-fashion": (3.3540, 0.377),
    "vqvae-fashion": (3.3283, 0.755),
}


@pytest.fixture(scope="module")
def test_images() -> torch.Tensor:
    return load_dataset("fashion-mnist", "test").x[:200]


def test_the_issue_bundles_every_model():
    assert {"vae-fashion", "beta-vae-fashion", "vqvae-fashion"} <= set(VAES)
    assert set(RECORDED) == set(VAES)


@pytest.mark.parametrize("model_id", VAES)
def test_bundled_vae_loads_offline_and_was_trained_by_its_recipe(model_id, no_network):
    model = zoo_core.load(model_id)
    card = model.card
    package, relative = card.weights.bundled.split(":")
    path = Path(__import__(package).__file__).parent / relative
    assert path.stat().st_size <= 10 * 2**20
    recipe = load_recipe(ROOT / card.training["recipe"])
    assert recipe.architecture == card.architecture and recipe.dataset == card.dataset
    assert recipe.model_id == model_id
    assert recipe.config.items() <= model.config.model_dump(mode="json").items()
    assert card.training["steps"] == recipe.train.steps
    assert no_network == []


@pytest.mark.numerics
@pytest.mark.parametrize("model_id", VAES)
def test_bundled_vae_keeps_its_bound_and_imputes_better_than_the_mean(model_id, test_images):
    model = zoo_core.load(model_id)
    bits, ratio = RECORDED[model_id]
    options = {"k": 10, "seed": 0} if model.architecture == "conv-vae" else {}
    bpd = float(-model.log_prob(test_images, **options).mean() / (784 * math.log(2)))
    assert bpd == pytest.approx(bits, abs=2e-3)
    known = torch.ones(28, 28, dtype=torch.bool)
    known[14:] = False
    filled = model.inpaint(test_images, known)
    mean = load_dataset("fashion-mnist", "train").x.mean(0, keepdim=True)
    ours = (filled - test_images)[..., 14:, :].square().mean()
    base = (mean - test_images)[..., 14:, :].square().mean()
    assert float(ours / base) == pytest.approx(ratio, abs=0.02)
    assert ratio < 0.9


@pytest.mark.parametrize("model_id", VAES)
def test_bundled_vae_samples_every_class(model_id):
    """fashion-net (93.7% test accuracy) sorts 500 samples: every class at least 3 of them
    (the smallest shares measured when committed: 1.4% vae, 2.0% beta-vae, 3.2% vq-vae; a
    decoder or prior gone wrong draws noise or a few shapes)."""
    from zoo_core.evaluation.extractors import get_extractor

    with torch.no_grad():
        logits = get_extractor("fashion-net")(zoo_core.load(model_id).sample(500, seed=1))["logits"]
    share = torch.bincount(logits.argmax(1), minlength=10) / 500
    assert share.min() >= 0.006, share.tolist()

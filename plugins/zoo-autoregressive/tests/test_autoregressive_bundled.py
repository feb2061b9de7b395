"""The bundled autoregressive models, parametrized over the registry's bundled
`autoregressive` models: each loads offline with its checksum, is no larger than 10 MB, was
trained by the recipe its card names, and keeps the figures measured when it was committed
(docs/autoregressive.md)."""

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
BUNDLED = [
    m
    for m in zoo_core.list_models(family="autoregressive")
    if isinstance(zoo_core.model_card(m).weights, BundledWeights)
]


def within(given: dict, full: dict) -> bool:
    """Whether every key the recipe gives has that value in the model's config, looking into
    nested settings (the config adds its defaults at every level)."""
    return all(
        key in full
        and (
            within(value, full[key])
            if isinstance(value, dict) and isinstance(full[key], dict)
            else full[key] == value
        )
        for key, value in given.items()
    )


@pytest.mark.parametrize("model_id", BUNDLED)
def test_bundled_model_loads_offline_and_was_trained_by_its_recipe(model_id, no_network):
    model = zoo_core.load(model_id)
    card = model.card
    package, relative = card.weights.bundled.split(":")
    path = Path(__import__(package).__file__).parent / relative
    assert path.stat().st_size <= 10 * 2**20
    recipe = load_recipe(ROOT / card.training["recipe"])
    assert recipe.architecture == card.architecture and recipe.dataset == card.dataset
    assert recipe.model_id == model_id
    assert within(recipe.config, model.config.model_dump(mode="json"))
    assert card.training["steps"] == recipe.train.steps
    assert no_network == []


@pytest.mark.numerics
def test_wavenet_sunspots_forecasts_better_than_the_seasonal_naive():
    """Forecasting 1979-2008 from 1700-1978 with 500 paths: the median path's mean absolute
    error, 22.3 sunspots when committed, against 29.25 for the value one 11-year cycle
    before."""
    model = zoo_core.load("wavenet-sunspots")
    train = load_dataset("sunspots", "train").x[0]
    test = load_dataset("sunspots", "test").x[0]
    paths = model.forecast(train, test.shape[0], n_paths=500, seed=0)
    mae = float((paths.median(0).values - test).abs().mean())
    naive = torch.stack([train[-11 + h % 11] for h in range(test.shape[0])])
    assert float((naive - test).abs().mean()) == pytest.approx(29.25, abs=1e-3)
    assert mae == pytest.approx(22.3, abs=0.3)


@pytest.mark.numerics
def test_gpt_fortunes_keeps_its_likelihood_and_writes_text():
    """The fortunes-bpd figure of its card: the 1,521 test documents' mean bits per byte,
    2.3147 when committed (and 2.2772 bits per character pooled); samples are texts in the
    model's vocabulary, at most as long as asked."""
    model = zoo_core.load("gpt-fortunes")
    docs = load_dataset("fortunes", "test").x
    log_prob = torch.cat([model.log_prob(docs[i : i + 100]) for i in range(0, len(docs), 100)])
    size = torch.tensor([len(d.encode("utf-8")) for d in docs], dtype=torch.float64)
    bits = -log_prob.double() / math.log(2.0)
    assert float((bits / size).mean()) == pytest.approx(2.3147, abs=1e-3)
    assert float(bits.sum() / sum(len(d) for d in docs)) == pytest.approx(2.2772, abs=1e-3)
    texts = model.sample(3, seed=0, max_new_tokens=80, temperature=0.8)
    assert len(texts) == 3 and all(isinstance(t, str) and 0 < len(t) <= 80 for t in texts)
    model.text.check(texts, "a sample")


@pytest.mark.numerics
def test_pixelcnn_fashion_keeps_its_likelihood_and_draws_the_classes_asked():
    """Bits/dim of the first 100 Fashion-MNIST test images given their class, 2.8205 when
    committed (2.941 over the whole split); fashion-net recognises the class asked for in
    46% of these 100 samples (10 per class; 55% of the card's 200), against 10% by chance."""
    from zoo_core.evaluation.extractors import get_extractor

    model = zoo_core.load("pixelcnn-fashion")
    test = load_dataset("fashion-mnist", "test")
    bits = model.bits_per_dim(test.x[:100], test.y[:100])
    assert float(bits.mean()) == pytest.approx(2.8205, abs=1e-3)
    labels = [c for c in range(10) for _ in range(10)]
    images = model.sample(100, seed=2, labels=labels)
    with torch.no_grad():
        seen = get_extractor("fashion-net")(images)["logits"].argmax(1)
    accuracy = (seen == torch.tensor(labels)).float().mean().item()
    assert accuracy == pytest.approx(0.46, abs=0.08)

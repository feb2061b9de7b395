"""The Generator interface, on the built-in model and on small inline architectures."""

from __future__ import annotations

import json
import math
from typing import ClassVar

import pytest
import torch
from pydantic import BaseModel, ConfigDict, Field

import zoo_core as zoo
from zoo_core.errors import CapabilityError, ConfigError, UnknownOptionError
from zoo_core.generator import Generator, NoSampleOptions
from zoo_core.seeding import Noise


@pytest.fixture(scope="module")
def ring():
    return zoo.load("gmm-ring8")


def test_samples_have_the_canonical_points_form(ring):
    x = ring.sample(10, seed=0)
    assert isinstance(x, torch.Tensor) and x.shape == (10, 2) and x.dtype == torch.float32
    assert ring.modality == "points" and ring.card.id == "gmm-ring8"
    assert not ring.training


@pytest.mark.numerics
def test_seeding_rule_prefix_and_batch_size(ring):
    eight = ring.sample(8, seed=0)
    # Other batch shapes: the same draws, up to the rounding of exp's vectorized and scalar
    # kernels, which split a tensor by its size.
    torch.testing.assert_close(eight[:4], ring.sample(4, seed=0), rtol=0, atol=1e-6)
    for batch_size in (1, 3, 5, 8, 100):
        torch.testing.assert_close(
            eight, ring.sample(8, seed=0, batch_size=batch_size), rtol=0, atol=1e-6
        )
    assert not torch.allclose(eight, ring.sample(8, seed=1), rtol=0, atol=1e-6)


def test_seed_none_draws_fresh_samples(ring):
    assert not torch.equal(ring.sample(16), ring.sample(16))


def test_sampling_reproduces_the_ring(ring):
    x = ring.sample(40000, seed=1)
    angles = torch.atan2(x[:, 1], x[:, 0])
    mode = torch.round(angles / (2 * math.pi / 8)).long() % 8
    centres = torch.stack(
        [torch.cos(mode * 2 * math.pi / 8), torch.sin(mode * 2 * math.pi / 8)], dim=1
    )
    residual = x - centres
    # Each of the 8 modes gets 1/8 of the samples, with standard deviation 0.01 around it.
    freq = torch.bincount(mode, minlength=8).double() / len(x)
    assert torch.allclose(freq, torch.full((8,), 0.125, dtype=torch.float64), atol=0.006)
    assert residual.std(dim=0).sub(0.01).abs().max().item() < 3e-4
    assert residual.mean(dim=0).abs().max().item() < 3e-4


def test_log_prob_matches_torch_distributions(ring):
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=ring.logits.detach()),
        torch.distributions.Independent(
            torch.distributions.Normal(ring.means.detach(), ring.log_scales.detach().exp()), 1
        ),
    )
    x = torch.cat([ring.sample(64, seed=3), torch.randn(16, 2)])
    with torch.no_grad():
        ours = ring.log_prob(x)
    assert torch.allclose(ours, reference.log_prob(x), rtol=1e-5, atol=1e-4)
    # At a mode's centre: log(1/8) + log N(0; 0, 0.01^2 I) in closed form.
    centre = torch.tensor([[1.0, 0.0]])
    expected = math.log(1 / 8) - math.log(2 * math.pi * 0.01**2)
    assert ring.log_prob(centre).item() == pytest.approx(expected, abs=1e-4)
    bpd = ring.bits_per_dim(centre).item()
    assert bpd == pytest.approx(-expected / (2 * math.log(2)), abs=1e-4)


def test_missing_capabilities_raise_capability_error(ring):
    with pytest.raises(CapabilityError, match="'gmm-ring8'.*'encode'"):
        ring.encode(torch.zeros(1, 2))
    for call in (
        lambda: ring.decode(torch.zeros(1, 2)),
        lambda: ring.inpaint(torch.zeros(1, 2), torch.ones(1, 2, dtype=torch.bool)),
        lambda: ring.interpolate(0, 1, 3),
    ):
        with pytest.raises(CapabilityError):
            call()


@pytest.mark.parametrize("n", [0, -1, 1.5, "4", True, None])
def test_bad_counts_are_config_errors(ring, n):
    with pytest.raises(ConfigError, match="n must be"):
        ring.sample(n, seed=0)


@pytest.mark.parametrize("batch_size", [0, -2, 2.5])
def test_bad_batch_sizes_are_config_errors(ring, batch_size):
    with pytest.raises(ConfigError, match="batch_size must be"):
        ring.sample(4, seed=0, batch_size=batch_size)


def test_unknown_sample_option_is_a_type_error(ring):
    with pytest.raises(UnknownOptionError, match="steps") as info:
        ring.sample(2, seed=0, steps=10)
    assert isinstance(info.value, TypeError)


def test_from_config_validates(ring):
    cls = type(ring)
    with pytest.raises(ConfigError, match="componets"):
        cls.from_config({"componets": 8, "dim": 2})
    with pytest.raises(ConfigError, match="dim"):
        cls.from_config({"components": 8, "dim": 0})
    with pytest.raises(TypeError, match="from_config"):
        cls({"components": 8, "dim": 2})
    model = cls.from_config({"components": 3, "dim": 4})
    assert model.means.shape == (3, 4) and model.card is None and model.name == "gmm"


# ------------------------------------------------------------------ inline architectures
class TinyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    width: int = Field(2, ge=1, description="Output width.")


class TinyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    temperature: float = Field(1.0, gt=0, description="Noise scale.")


class Tiny(Generator):
    architecture: ClassVar[str] = "tiny"
    Config: ClassVar[type[BaseModel]] = TinyConfig
    SampleOptions: ClassVar[type[BaseModel]] = TinyOptions
    modality: ClassVar[str] = "points"

    def __init__(self, config):
        super().__init__(config)
        self.scale = torch.nn.Parameter(torch.ones(config.width))

    def sample_batch(self, noise: Noise, options):
        return noise.randn(self.config.width) * self.scale * options.temperature


def test_sample_options_are_validated_and_passed():
    model = Tiny.from_config({})
    hot = model.sample(3, seed=0, temperature=2.0)
    assert torch.allclose(hot, 2 * model.sample(3, seed=0))
    with pytest.raises(ConfigError, match="temperature"):
        model.sample(3, seed=0, temperature=-1.0)


def test_capabilities_are_declared_not_sniffed():
    class Undeclared(Tiny):
        def log_prob(self, x):
            return x.sum(-1)

    class Unimplemented(Tiny):
        capabilities: ClassVar[frozenset[str]] = frozenset({"sample", "encode"})

    class Unknown(Tiny):
        capabilities: ClassVar[frozenset[str]] = frozenset({"sample", "fly"})

    class Nothing(Tiny):
        capabilities: ClassVar[frozenset[str]] = frozenset()

    for cls, message in (
        (Undeclared, "overrides log_prob"),
        (Unimplemented, "does not override encode"),
        (Unknown, "fly"),
        (Nothing, "non-empty"),
    ):
        with pytest.raises(TypeError, match=message):
            cls.from_config({})


def test_a_model_without_sample_says_why_and_draws_nothing():
    class Autoencoder(Tiny):
        capabilities: ClassVar[frozenset[str]] = frozenset({"decode"})
        unsupported: ClassVar[dict[str, str]] = {"sample": "its latent prior was never trained"}

        def decode(self, z):
            return z * self.scale

        def sample_batch(self, noise, options):
            raise AssertionError("sample must refuse before drawing")

    model = Autoencoder.from_config({})
    assert torch.equal(model.decode(torch.ones(1, 2)), torch.ones(1, 2))
    with pytest.raises(CapabilityError, match="'sample': its latent prior was never trained"):
        model.sample(2, seed=0)
    with pytest.raises(CapabilityError, match=r"'log_prob' \(it has: decode\)"):
        model.log_prob(torch.ones(1, 2))


def test_text_samples_concatenate_as_lists():
    class Words(Tiny):
        modality: ClassVar[str] = "text"
        SampleOptions: ClassVar[type[BaseModel]] = NoSampleOptions

        def sample_batch(self, noise, options):
            return [f"word{int(i)}" for i in noise.indices]

    out = Words.from_config({}).sample(5, seed=0, batch_size=2)
    assert out == ["word0", "word1", "word2", "word3", "word4"]


def test_trainer_and_evaluator_are_abstract():
    with pytest.raises(TypeError):
        zoo.Trainer(Tiny.from_config({}))
    with pytest.raises(TypeError):
        zoo.Evaluator()


def test_the_card_page_elides_long_config_values_that_config_json_keeps(tmp_path):
    class VocabConfig(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        characters: str = Field("x" * 1000, description="A long vocabulary.")
        width: int = Field(2, description="Output width.")

    class Vocab(Tiny):
        architecture: ClassVar[str] = "tiny-vocab"
        Config: ClassVar[type[BaseModel]] = VocabConfig

    model = Vocab.from_config({})
    model.save_pretrained(tmp_path)
    page = (tmp_path / "README.md").read_text()
    assert "<1,002 characters: see config.json>" in page and "x" * 500 not in page
    assert '"width": 2' in page
    assert json.loads((tmp_path / "config.json").read_text())["characters"] == "x" * 1000

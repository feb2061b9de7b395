"""gpt against transformers' ``GPT2LMHeadModel``, the reference for openai-community/gpt2*; then
sampling (the seeding rule, top-k and top-p against a hand computation, the KV cache, per-
sample prompts), exact likelihoods, the character tokenizer, the trainer and the errors.

Each reference model gets seeded random weights (LayerNorm affines and biases too, so that a
swapped norm or a dropped bias shows), goes to disk through transformers' own
``save_pretrained`` with a ``tokenizer.json`` beside it, and comes back through ``zoo.load``
and the ``transformers-gpt2`` converter. The real GPT-2 tokenizer is not available offline: the
tests build a GPT-2-like one, a byte-level BPE learnt on a paragraph, its vocabulary filled
with placeholder tokens up to the model's size and ``<|endoftext|>`` last, as in GPT-2.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel
from zoo_autoregressive import gpt as gpt_module
from zoo_autoregressive.gpt import (
    GPT,
    GPTSampleOptions,
    KVCache,
    config_from_transformers,
    state_dict_from_transformers,
)
from zoo_autoregressive.tokenizer import tokenizer_json_config
from zoo_autoregressive.trainer import GPTTrainer, GPTTrainerConfig

import zoo_core
from zoo_core.errors import ConfigError, StateDictMismatchError, UnknownOptionError
from zoo_core.seeding import Noise

MODEL_ID = "gpt2"
REPO = "openai-community/gpt2"
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # a made-up snapshot of the cache
FILES = ("config.json", "model.safetensors", "tokenizer.json")
RECIPE = Path(__file__).parents[1] / "recipes" / "gpt-fortunes.yaml"
LATIN1 = "".join(map(chr, range(256)))
TEXT = """\
A generative model learns the distribution of its training data and draws new examples
from it. An autoregressive model writes the probability of a sequence as a product of the
probabilities of each token given the tokens before it, so that its likelihood is exact and
sampling proceeds one token at a time. The transformer computes every conditional at once
during training, with attention that looks only to the left; at generation time the keys
and values of the tokens already written are kept in a cache, so that each new token costs
one pass over the weights. Language models trained this way on a large corpus of web pages
continue a prompt with text in the same style, answer questions and translate sentences
without being trained for those tasks: they learn them from naturally occurring examples.
"""
SMALL = {"n_positions": 64, "n_embd": 64, "n_layer": 3, "n_head": 4}  # a 320-token vocabulary


@pytest.fixture(autouse=True)
def fresh_plugins(fresh_zoo):
    """Each test starts with freshly loaded plugins and a clean ZOO_* environment (the
    kit's ``fresh_zoo``)."""


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The suite shares few cores; one thread also makes the timings steady."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------- reference models
def gpt2_like_tokenizer(vocab_size: int) -> Tokenizer:
    """A byte-level BPE as GPT-2's: merges learnt on TEXT, placeholder tokens up to
    ``vocab_size - 1``, and ``<|endoftext|>`` as the last id."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    learn = trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator([TEXT], learn)
    data = json.loads(tokenizer.to_str())
    vocab = data["model"]["vocab"]
    for i in range(len(vocab), vocab_size - 1):
        vocab[f"<filler{i}>"] = i
    vocab["<|endoftext|>"] = vocab_size - 1
    data["added_tokens"] = [
        {
            "id": vocab_size - 1,
            "content": "<|endoftext|>",
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": True,
            "special": True,
        }
    ]
    return Tokenizer.from_str(json.dumps(data))


def reference(vocab_size: int, std: float | None = None, **config) -> GPT2LMHeadModel:
    """A GPT2LMHeadModel with seeded random weights: transformers' initialisation, or N(0, std)
    weights (large enough that a random model's greedy text does not repeat one token), and
    LayerNorm affines and biases perturbed in either case."""
    torch.manual_seed(0)
    eot = vocab_size - 1
    hf = GPT2Config(vocab_size=vocab_size, bos_token_id=eot, eos_token_id=eot, **config)
    model = GPT2LMHeadModel(hf)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln_" in name or name.endswith(".bias"):
                p.add_(0.1 * torch.randn_like(p))
            elif std is not None:
                p.normal_(0, std)
    return model.eval()


def save_repo(model: GPT2LMHeadModel, tokenizer: Tokenizer, folder: Path) -> Path:
    """The files of a Hub repository of transformers' GPT-2: config.json, model.safetensors
    (transformers' save_pretrained) and tokenizer.json."""
    model.save_pretrained(folder)
    tokenizer.save(str(folder / "tokenizer.json"))
    assert all((folder / name).is_file() for name in FILES)
    return folder


def greedy_reference(model: GPT2LMHeadModel, context: list[int], steps: int) -> list[int]:
    with torch.no_grad():
        out = model.generate(
            torch.tensor([context]),
            max_new_tokens=steps,
            min_new_tokens=steps,
            do_sample=False,
            pad_token_id=context[0],
        )
    return out[0, len(context) :].tolist()


def assert_same_as_transformers(ref, ours: GPT, tokenizer: Tokenizer, steps: int = 32):
    """Logits to 1e-4; greedy generation from a prompt: the same tokens and the same text."""
    ids = torch.randint(
        0, ref.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        expected = ref(ids).logits
        got = ours(ids)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    assert expected.std() > 0.1  # worth comparing
    prompt = "The transformer computes"
    context = [ours.config.bos_token_id, *tokenizer.encode(prompt).ids]
    tokens = greedy_reference(ref, context, steps)
    assert ours.generate([context], max_new_tokens=steps, temperature=0, stop_at_eos=False) == [
        tokens
    ]
    text = ours.sample(
        1, seed=0, prompt=prompt, temperature=0, max_new_tokens=steps, stop_at_eos=False
    )
    assert text == [tokenizer.decode(tokens, skip_special_tokens=False)]
    return tokens


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory):
    tokenizer = gpt2_like_tokenizer(320)
    model = reference(320, std=0.3, **SMALL)
    return model, tokenizer, save_repo(model, tokenizer, tmp_path_factory.mktemp("gpt2-small"))


@pytest.fixture(scope="module")
def small(small_repo) -> GPT:
    """The small reference converted (without the registry)."""
    _, _, folder = small_repo
    tokenizer = tokenizer_json_config((folder / "tokenizer.json").read_text())
    config = config_from_transformers(json.loads((folder / "config.json").read_text()), tokenizer)
    model = GPT(config)
    state = load_file(folder / "model.safetensors")
    model.load_state_dict(state_dict_from_transformers(state, config))
    return model.eval()


# --------------------------------------------------------------------- against transformers
@pytest.mark.slow
def test_the_gpt2_configuration_matches_transformers(tmp_path):
    """GPT-2 124M (random weights) through zoo.load(weights=...): logits and greedy text."""
    tokenizer = gpt2_like_tokenizer(50257)
    ref = reference(50257)
    model = zoo_core.load(MODEL_ID, weights=save_repo(ref, tokenizer, tmp_path))
    assert isinstance(model, GPT) and model.card.id == MODEL_ID and not model.training
    assert sum(p.numel() for p in model.parameters()) == 124_439_808
    assert model.config.n_positions == 1024 and model.config.bos_token_id == 50256
    assert model.text.vocab_size == 50257
    assert_same_as_transformers(ref, model, tokenizer, steps=32)


def test_a_small_model_matches_transformers(small_repo):
    ref, tokenizer, folder = small_repo
    model = zoo_core.load(MODEL_ID, weights=folder)
    tokens = assert_same_as_transformers(ref, model, tokenizer, steps=32)
    assert len(set(tokens)) > 3  # not one token repeated


def test_the_card_loads_offline_from_the_hub_cache(small_repo, monkeypatch, hub_cache, no_network):
    """The gpt2 card, its files in a hand-built Hugging Face cache (a small model of the same
    format: the card reads the configuration from the repository)."""
    ref, tokenizer, folder = small_repo
    hub_cache(REPO, COMMIT, {name: (folder / name).read_bytes() for name in FILES})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = zoo_core.load(MODEL_ID)
    card = model.card
    assert card.weights.hub == REPO and card.weights.format == "transformers-gpt2"
    assert card.modality == "text" and card.license == "MIT" and "unsupervised" in card.paper
    assert_same_as_transformers(ref, model, tokenizer, steps=8)
    assert no_network == []


def test_every_gpt2_card_is_a_transformers_repository():
    for model_id in ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"):
        card = zoo_core.model_card(model_id)
        assert card.architecture == "gpt" and card.plugin == "zoo-autoregressive"
        assert card.weights.hub == f"openai-community/{model_id}"
        assert tuple(card.weights.files) == FILES and card.weights.format == "transformers-gpt2"
        assert card.reported["protocol"] == "gpt2-paper-table3-zero-shot"
    # the paper's Table 3: perplexity falls with size
    ppl = [zoo_core.model_card(m).reported["wikitext2_ppl"] for m in ("gpt2", "gpt2-xl")]
    assert ppl == [29.41, 18.34]


@pytest.mark.numerics
def test_the_kv_cache_path_equals_the_no_cache_path(small):
    ids = torch.randint(0, 320, (2, 40), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = small(ids)  # (2, 40, V)
        cache = KVCache(small.config, 2, 40, dtype=torch.float32, device=torch.device("cpu"))
        steps = [small(ids[:, :10], cache=cache)]  # prefill 10, a chunk of 5, then one by one
        steps.append(small(ids[:, 10:15], cache=cache, start=10))
        steps += [small(ids[:, t : t + 1], cache=cache, start=t) for t in range(15, 40)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-4, rtol=0)


@pytest.mark.numerics
def test_contexts_of_different_lengths_generate_as_alone(small):
    """Contexts of different lengths in one call continue as they would alone: greedy, and
    sampled (row i draws as sample i, compared through ``start=i``)."""
    contexts = [[319, 5, 6, 7, 8, 9, 10], [319, 42], [319, 100, 101, 102]]
    together = small.generate(contexts, max_new_tokens=12, temperature=0, stop_at_eos=False)
    for context, row in zip(contexts, together, strict=True):
        alone = small.generate([context], max_new_tokens=12, temperature=0, stop_at_eos=False)
        assert alone == [row]
    prompts = ["The cache", "A", "sampling proceeds one", "A"]
    batch = small.sample(4, seed=3, prompt=prompts, max_new_tokens=10, temperature=1.2)
    for i, prompt in enumerate(prompts):
        alone = small.sample(1, seed=3, start=i, prompt=prompt, max_new_tokens=10, temperature=1.2)
        assert alone == batch[i : i + 1]
    assert len(set(batch)) == 4


@pytest.mark.numerics
def test_without_max_new_tokens_each_sample_runs_to_its_own_window_end(chars):
    texts = chars.sample(2, seed=0, prompt=["x" * 40, "x" * 10], stop_at_eos=False)
    assert [len(chars.text.encode([t])[0]) for t in texts] == [8, 38]
    assert chars.sample(1, seed=0, start=1, prompt="x" * 10, stop_at_eos=False) == texts[1:]


def test_original_checkpoint_names_load_alike(small_repo, tmp_path):
    """OpenAI's original GPT-2 checkpoints: no 'transformer.' prefix, the causal-mask buffers
    attn.bias and attn.masked_bias, and lm_head.weight stored beside wte."""
    ref, tokenizer, folder = small_repo
    state = load_file(folder / "model.safetensors")
    old = {name.removeprefix("transformer."): t for name, t in state.items()}
    n = ref.config.n_positions
    for i in range(ref.config.n_layer):
        old[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n))[None, None]
        old[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    old["lm_head.weight"] = old["wte.weight"].clone()
    copy = tmp_path / "old"
    copy.mkdir()
    save_file(old, copy / "model.safetensors")
    for name in ("config.json", "tokenizer.json"):
        (copy / name).write_bytes((folder / name).read_bytes())
    assert_same_as_transformers(ref, zoo_core.load(MODEL_ID, weights=copy), tokenizer, steps=4)


def test_a_missing_or_unexpected_tensor_is_named(small_repo, tmp_path):
    _, _, folder = small_repo
    state = load_file(folder / "model.safetensors")
    del state["transformer.h.1.mlp.c_fc.bias"]
    state["transformer.h.0.attn.c_extra.weight"] = torch.zeros(1)
    config = config_from_transformers(
        json.loads((folder / "config.json").read_text()),
        tokenizer_json_config((folder / "tokenizer.json").read_text()),
    )
    with pytest.raises(StateDictMismatchError) as info:
        state_dict_from_transformers(state, config, source="x/model.safetensors")
    message = str(info.value)
    assert "missing h.1.mlp.c_fc.bias" in message and "x/model.safetensors" in message
    assert "unexpected transformer.h.0.attn.c_extra.weight" in message


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"activation_function": "relu"}, "activation_function"),
        ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
        ({"add_cross_attention": True}, "add_cross_attention"),
        ({"model_type": "gpt_neo"}, "model_type"),
        ({"n_embd": 66}, "n_head"),
        ({"vocab_size": 100}, "vocab_size"),
    ],
    ids=["activation", "layer-scaling", "cross-attention", "model-type", "heads", "vocab"],
)
def test_an_unsupported_transformers_option_is_named(small_repo, tmp_path, change, named):
    _, _, folder = small_repo
    config = {**json.loads((folder / "config.json").read_text()), **change}
    for name in ("model.safetensors", "tokenizer.json"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=named):
        zoo_core.load(MODEL_ID, weights=tmp_path)


# ----------------------------------------------------------------------------- char models
def char_model(characters: str = LATIN1, seed: int = 0, **config) -> GPT:
    """A small character-level model with N(0, 0.3) weights, large enough that its distributions
    are far from uniform (and its greedy text does not repeat one character)."""
    torch.manual_seed(seed)
    eot = len(characters)
    model = GPT.from_config(
        {
            "vocab_size": eot + 1,
            "n_positions": 48,
            "n_embd": 32,
            "n_layer": 2,
            "n_head": 2,
            "bos_token_id": eot,
            "eos_token_id": eot,
            "tokenizer": {"kind": "char", "characters": characters},
            **config,
        }
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and ".ln" not in name and "ln_f" not in name:
                p.normal_(0, 0.3)
    return model.eval()


@pytest.fixture(scope="module")
def chars() -> GPT:
    return char_model()


def test_the_char_tokenizer_round_trips(chars):
    text = "Hello,\tworld!\n\nÜber café: £5\x07 ~"
    ids = chars.text.encode([text])[0]
    assert ids == [ord(c) for c in text]  # the Latin-1 vocabulary: id = code point
    assert chars.text.decode(ids) == text
    assert chars.text.token_id("<|endoftext|>") == 256 == chars.config.eos_token_id
    assert chars.text.decode([104, 105, 256]) == "hi<|endoftext|>"


def test_save_pretrained_round_trips_the_model_and_its_tokenizer(chars, tmp_path):
    chars.save_pretrained(tmp_path)
    again = zoo_core.from_pretrained(tmp_path)
    assert isinstance(again, GPT) and again.config == chars.config
    assert all(
        torch.equal(a, b)
        for a, b in zip(again.state_dict().values(), chars.state_dict().values(), strict=True)
    )
    options = {"max_new_tokens": 16, "prompt": "Once"}
    assert again.sample(3, seed=1, **options) == chars.sample(3, seed=1, **options)
    assert json.loads((tmp_path / "config.json").read_text())["tokenizer"]["characters"] == LATIN1


@pytest.mark.numerics
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"temperature": 0.7, "top_k": 20},
        {"top_p": 0.8},
        {"temperature": 1.3, "top_k": 50, "top_p": 0.95},
    ],
    ids=["plain", "top-k", "top-p", "all"],
)
def test_sampling_follows_the_seeding_rule(chars, options):
    opts = {"max_new_tokens": 20, **options}
    eight = chars.sample(8, seed=3, **opts)
    assert len(eight) == 8 and all(isinstance(t, str) for t in eight)
    assert chars.sample(4, seed=3, **opts) == eight[:4]  # prefix
    assert chars.sample(8, seed=3, batch_size=3, **opts) == eight  # batch size
    assert chars.sample(3, seed=3, start=5, **opts) == eight[5:]  # a shard
    assert chars.sample(8, seed=4, **opts) != eight
    assert len(set(eight)) == 8


@pytest.mark.numerics
def test_the_end_of_text_token_ends_samples(chars):
    """With a frequent end-of-text token, samples end at different steps (finished rows leave
    the batch); each is the no-stop sample cut at its first end-of-text token."""
    with torch.no_grad():
        probs = torch.softmax(chars(torch.tensor([[256]]))[0, -1], -1)
    frequent = int(probs[:256].argmax())
    model = char_model(eos_token_id=frequent)
    stopped = model.sample(16, seed=5, max_new_tokens=40, batch_size=16)
    full = model.sample(16, seed=5, max_new_tokens=40, stop_at_eos=False, batch_size=5)
    assert len({len(t) for t in stopped}) > 3
    end = chr(frequent)
    assert all(end not in t for t in stopped)
    assert [t.split(end)[0] for t in full] == stopped
    assert model.nfe(GPTSampleOptions()) is None
    assert model.nfe(GPTSampleOptions(stop_at_eos=False, max_new_tokens=7)) == 7


PROBS = [0.4, 0.25, 0.15, 0.1, 0.06, 0.04]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, PROBS),
        ({"top_k": 3}, [0.4, 0.25, 0.15, 0, 0, 0]),
        ({"top_p": 0.6}, [0.4, 0.25, 0, 0, 0, 0]),  # 0.4 < 0.6 <= 0.65
        ({"top_p": 0.35}, [1, 0, 0, 0, 0, 0]),
        ({"top_p": 0.95}, [0.4, 0.25, 0.15, 0.1, 0.06, 0]),  # 0.96 >= 0.95 before 0.04
        ({"top_k": 4, "top_p": 0.7}, [0.4, 0.25, 0, 0, 0, 0]),  # renormalised top 4: .44 .72
        ({"temperature": 2.0}, [p**0.5 for p in PROBS]),
        ({"temperature": 0.5, "top_k": 2}, [0.16, 0.0625, 0, 0, 0, 0]),
    ],
    ids=["plain", "top-k", "top-p", "top-p-one", "top-p-tail", "both", "hot", "cold-top-k"],
)
def test_top_k_and_top_p_keep_what_a_hand_computation_keeps(options, expected):
    rows = 4000
    logits = torch.tensor(PROBS).log().repeat(rows, 1)  # (rows, 6)
    noise = Noise.for_range(11, 0, rows)
    drawn = GPT._choose(logits, noise, 3, GPTSampleOptions(**options))
    target = torch.tensor(expected, dtype=torch.float64)
    target = target / target.sum()
    assert torch.equal(drawn, noise.categorical(target.repeat(rows, 1), step=3))
    frequencies = torch.bincount(drawn, minlength=6) / rows
    assert (frequencies - target).abs().max() < 0.03
    assert (frequencies[target == 0] == 0).all()


def test_temperature_zero_is_greedy(chars):
    greedy = chars.sample(2, seed=0, temperature=0, max_new_tokens=10, stop_at_eos=False)
    assert (
        greedy[0]
        == greedy[1]
        == chars.sample(1, seed=9, temperature=0, max_new_tokens=10, stop_at_eos=False)[0]
    )
    context = [256, *chars.text.encode([greedy[0][:5]])[0]]
    with torch.no_grad():
        best = int(chars(torch.tensor([context]))[0, -1].argmax())
    assert ord(greedy[0][5]) == best


# ---------------------------------------------------------------------------- likelihoods
def manual_log_prob(model: GPT, sequence: list[int]) -> float:
    """Sum of log-softmax of one no-cache forward over a sequence that fits the window."""
    ids = torch.tensor([sequence])
    with torch.no_grad():
        logp = F.log_softmax(model(ids[:, :-1]).double(), -1)
    return logp[0].gather(-1, ids[0, 1:, None]).sum().item()


@pytest.mark.numerics
def test_log_prob_is_the_sum_of_the_forward_log_softmax(chars):
    ids = torch.randint(0, 257, (3, 20), generator=torch.Generator().manual_seed(3))
    got = chars.log_prob(ids)
    expected = [manual_log_prob(chars, [256, *row]) for row in ids.tolist()]
    torch.testing.assert_close(
        got.double(), torch.tensor(expected, dtype=torch.float64), atol=1e-3, rtol=1e-6
    )
    torch.testing.assert_close(chars.bits_per_dim(ids), -got / (20 * math.log(2)))
    # texts: the tokens and the end-of-text token, after the start token
    texts = ["Hello", "café au lait\n", "x"]
    got = chars.log_prob(texts)
    expected = [manual_log_prob(chars, [256, *map(ord, t), 256]) for t in texts]
    torch.testing.assert_close(
        got.double(), torch.tensor(expected, dtype=torch.float64), atol=1e-3, rtol=1e-6
    )
    assert not got.requires_grad  # scoring a corpus must not keep every activation alive
    size = torch.tensor([5.0, 14.0, 1.0])  # UTF-8 bytes: é is two
    torch.testing.assert_close(chars.bits_per_dim(texts), -got / (size * math.log(2)))
    torch.testing.assert_close(
        chars.bits_per_char(texts), -got / (torch.tensor([5.0, 13.0, 1.0]) * math.log(2))
    )


@pytest.mark.numerics
def test_log_prob_is_the_same_in_one_batch_or_one_row_at_a_time(chars, monkeypatch):
    texts = ["a longer text than the others", "b", "cc", "the end"]
    together = chars.log_prob(texts)
    monkeypatch.setattr(gpt_module, "LOGITS_BUDGET", 1)  # one row per forward
    torch.testing.assert_close(chars.log_prob(texts), together, atol=1e-4, rtol=1e-6)


def test_log_prob_sums_to_one_over_every_sequence():
    model = char_model("abc", seed=1)
    grid = torch.cartesian_prod(*[torch.arange(4)] * 3)  # every (N, 3) sequence of 4 tokens
    assert math.isclose(model.log_prob(grid).double().exp().sum().item(), 1.0, rel_tol=1e-5)


@pytest.mark.numerics
def test_a_sequence_longer_than_the_window_is_scored_in_half_window_steps():
    model = char_model(n_positions=16)
    ids = torch.randint(0, 256, (2, 40), generator=torch.Generator().manual_seed(4))
    got = model.log_prob(ids)
    for row, value in zip(ids.tolist(), got.tolist(), strict=True):
        seq = [256, *row]  # targets 1..40: windows from 0, 8, 16, 24 score 1-16, 17-24, ...
        total = 0.0
        for begin, first, end in [(0, 1, 16), (8, 17, 24), (16, 25, 32), (24, 33, 40)]:
            window = torch.tensor([seq[begin : end + 1]])
            with torch.no_grad():
                logp = F.log_softmax(model(window[:, :-1]).double(), -1)[0]
            picked = logp.gather(-1, window[0, 1:, None])[:, 0]
            total += picked[first - begin - 1 :].sum().item()
        assert math.isclose(value, total, abs_tol=1e-3)
    short = torch.randint(0, 256, (1, 16), generator=torch.Generator().manual_seed(5))
    assert math.isclose(
        model.log_prob(short).item(),
        manual_log_prob(model, [256, *short[0].tolist()]),
        abs_tol=1e-3,
    )


def test_bf16_runs_and_stays_close(chars):
    half = GPT(chars.config)
    half.load_state_dict(chars.state_dict())
    half.to(torch.bfloat16).eval()
    ids = torch.randint(0, 257, (2, 30), generator=torch.Generator().manual_seed(6))
    lp32, lp16 = chars.log_prob(ids), half.log_prob(ids)
    assert lp16.dtype == torch.float32 and ((lp16 - lp32).abs() / lp32.abs()).max() < 0.02
    # scoring and generation lay the weights out for the dtype: row-major for bf16,
    # column-major in fp32 (the model's layout after a cast is whatever .to() kept)
    assert half.wte.weight.is_contiguous()
    assert not chars.wte.weight.is_contiguous() and chars.wte.weight.stride() == (1, 257)
    assert len(half.generate([[256]], seed=0, max_new_tokens=8, stop_at_eos=False)[0]) == 8


def test_the_generation_layout_follows_casts_and_stays_out_of_inference_mode(chars):
    model = GPT(chars.config)
    model.load_state_dict(chars.state_dict())
    model.eval()
    weights = [model.wte.weight, model.blocks[0].attn.qkv.weight, model.blocks[0].mlp.proj.weight]
    before = [w.detach().clone() for w in weights]
    ids = torch.randint(0, 257, (2, 12), generator=torch.Generator().manual_seed(7))
    expected = model.generate(ids, seed=0, max_new_tokens=6, stop_at_eos=False)
    model.to(torch.float64).log_prob(ids)  # row-major in float64 (values exact both ways)
    model.to(torch.float32)  # .to() keeps the strides: row-major float32
    assert all(w.is_contiguous() for w in weights)
    with torch.inference_mode():  # a caller's inference mode must not leak into the weights
        assert model.generate(ids, seed=0, max_new_tokens=6, stop_at_eos=False) == expected
    for weight, value in zip(weights, before, strict=True):
        assert weight.stride() == (1, weight.shape[0]) and not weight.is_inference()
        assert torch.equal(weight, value)
    where = [w.data_ptr() for w in model.parameters()]
    model.log_prob(ids)  # a fitting layout is left alone
    assert [w.data_ptr() for w in model.parameters()] == where


# ------------------------------------------------------------------------------- training
def test_the_trainer_cuts_the_corpus_into_windows_and_lowers_the_loss():
    model = char_model(n_positions=16)
    model.train()
    trainer = GPTTrainer(model, GPTTrainerConfig(window=8, stride=4))
    docs = ["abc", "hello world", "the end"]
    windows = trainer.dataset(SimpleNamespace(x=docs, name="tiny"))
    stream = [256, *map(ord, "abc"), 256, *map(ord, "hello world"), 256, *map(ord, "the end"), 256]
    assert len(windows) == (len(stream) - 9) // 4 + 1
    for i in range(len(windows)):
        assert windows[i].tolist() == stream[4 * i : 4 * i + 9]
    batch = torch.stack([windows[i] for i in range(len(windows))])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(15):
        out = trainer.training_step(batch, step, "model")
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(out["loss"].item())
        assert math.isclose(out["bits_per_token"].item(), losses[-1] / math.log(2), rel_tol=1e-6)
    assert losses[-1] < 0.7 * losses[0]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ConfigError, match="€"):
        trainer.dataset(SimpleNamespace(x=["costs 5€"], name="tiny"))
    with pytest.raises(ConfigError, match="n_positions 16"):
        GPTTrainer(model, GPTTrainerConfig(window=17)).dataset(SimpleNamespace(x=docs))


def test_the_recipe_builds_a_bundlable_model_and_trains(tmp_path):
    from zoo_core.data.text import DEBIAN_FORTUNES
    from zoo_core.training import train
    from zoo_core.training.config import load_recipe

    recipe = load_recipe(RECIPE)
    model = GPT.from_config(recipe.config)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    assert size <= 10 * 2**20 and model.config.tokenizer.characters == LATIN1
    if not (DEBIAN_FORTUNES / "fortunes").exists():
        pytest.skip("the fortunes corpus is missing: install the Debian package fortunes")
    short = load_recipe(
        RECIPE,
        {
            "train.steps": 2,
            "train.batch_size": 2,
            "train.schedule.warmup_steps": 1,
            "train.sample_every": 2,
            "train.sample_count": 2,
            "train.ema.start": 0,
        },
    )
    result = train(short, tmp_path / "run", progress=False)
    assert result.status == "finished" and math.isfinite(result.final_loss)
    trained = zoo_core.from_pretrained(result.model_dir)
    assert isinstance(trained, GPT) and trained.config == model.config
    assert len(list((tmp_path / "run" / "samples").iterdir())) == 1


# --------------------------------------------------------------------------------- errors
def test_max_new_tokens_past_the_window_says_what_the_window_is(chars):
    assert len(chars.sample(1, seed=0, prompt="abc", max_new_tokens=45, stop_at_eos=False)[0]) == 45
    with pytest.raises(ConfigError) as info:
        chars.sample(1, seed=0, prompt="abc", max_new_tokens=46)
    message = str(info.value)
    assert "context window of 48 tokens" in message and "3-token prompt" in message
    assert "at most 45" in message
    with pytest.raises(ConfigError, match="fills the context window of 48 tokens"):
        chars.sample(1, seed=0, prompt="x" * 48)
    # without max_new_tokens, a sample may run to the end of the window
    assert len(chars.sample(1, seed=0, prompt="x" * 40, stop_at_eos=False)[0]) == 8


@pytest.mark.parametrize(
    ("options", "error", "said"),
    [
        ({"top_p": 0.0}, ConfigError, "top_p"),
        ({"top_p": 1.5}, ConfigError, "top_p"),
        ({"temperature": -0.5}, ConfigError, "temperature"),
        ({"top_k": 0}, ConfigError, "top_k"),
        ({"max_new_tokens": 0}, ConfigError, "max_new_tokens"),
        ({"top_q": 0.5}, UnknownOptionError, "top_q"),
        ({"prompt": ""}, ConfigError, "prompt is empty"),
        ({"prompt": ["ok", ""]}, ConfigError, "prompt is empty"),
        ({"prompt": 5}, ConfigError, "prompt"),
        ({"prompt": ["one", "two", "three"]}, ConfigError, "3 entries for 2 samples"),
    ],
    ids=[
        "top-p-0",
        "top-p-big",
        "temperature",
        "top-k",
        "max-new",
        "unknown",
        "empty",
        "empty-in-list",
        "not-text",
        "prompt-count",
    ],
)
def test_bad_sampling_options_are_typed_one_line_errors(chars, options, error, said):
    with pytest.raises(error, match=said) as info:
        chars.sample(2, seed=0, **options)
    assert "\n" not in str(info.value)


def test_characters_outside_the_vocabulary_are_named():
    model = char_model("abc ")
    with pytest.raises(ConfigError) as info:
        model.sample(1, seed=0, prompt="a bad€")
    message = str(info.value)
    assert "'d' (U+0064)" in message and "'€' (U+20AC)" in message and "vocabulary" in message
    with pytest.raises(ConfigError, match="'x' \\(U\\+0078\\)"):
        model.log_prob(["abx"])
    with pytest.raises(ConfigError, match="repeated: 'a'"):
        char_model("aba")


@pytest.mark.parametrize(
    ("x", "said"),
    [
        (torch.zeros(2, 3), "torch.float32"),
        (torch.zeros(5, dtype=torch.int64), "shape (5,)"),
        (torch.full((1, 3), 257), "outside [0, 257)"),
        (torch.zeros(1, 0, dtype=torch.int64), "empty"),
        ("hello", "list of texts"),
    ],
    ids=["float", "1d", "range", "empty", "one-string"],
)
def test_log_prob_refuses_what_is_not_token_ids_or_texts(chars, x, said):
    with pytest.raises(ConfigError, match=re.escape(said)):
        chars.log_prob(x)


def test_generate_checks_its_contexts(chars):
    with pytest.raises(ConfigError, match="max_new_tokens"):
        chars.generate([[256]])
    with pytest.raises(ConfigError, match=r"\[0, 257\)"):
        chars.generate([[256, 300]], max_new_tokens=2)
    with pytest.raises(ConfigError, match="context window of 48"):
        chars.generate([[256] * 40], max_new_tokens=10)
    with pytest.raises(ConfigError, match="sample\\(prompt"):
        chars.generate([[256]], max_new_tokens=2, prompt="a")

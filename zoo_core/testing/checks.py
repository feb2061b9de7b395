"""The rules of the conformance kit, one function each.

Each ``check_*`` function takes a Generator class (built from its ``example``) or a model
id, and raises :class:`ConformanceError` naming the rule it found broken; it returns
nothing when the rule holds. The rules are the contract of docs/api.md (sample forms, the
seeding rule, persistence, capabilities) and of docs/registry.md and docs/weights.md (cards,
offline weights).
"""

from __future__ import annotations

import json
import math
import tempfile
from typing import Any

import pytest
import torch

import zoo_core
from zoo_core.card import BundledWeights
from zoo_core.catalog import architecture_class
from zoo_core.data import load_dataset
from zoo_core.errors import CapabilityError, WeightsUnavailableError, ZooError
from zoo_core.generator import _METHOD_CAPABILITIES, Example, Generator, validate_config
from zoo_core.testing.network import block_network
from zoo_core.training.batches import collate

N = 4  # samples per call: small, and enough for a prefix, a shard and a batch split


class ConformanceError(AssertionError):
    """A rule of the contract that a plugin breaks; the message starts with the rule."""

    def __init__(self, rule: str, message: str):
        self.rule = rule
        super().__init__(f"[{rule}] {message}")


# ----------------------------------------------------------------------------- building
def example_of(cls: type[Generator]) -> Example:
    """The class's declared :class:`Example`."""
    example = getattr(cls, "example", None)
    if not isinstance(example, Example):
        raise ConformanceError(
            "example declared",
            f"{cls.__name__} declares no small instance for the kit: set the class attribute "
            f"example = zoo_core.Example(config={{...}}) (a config that builds and samples in "
            f"about a second)",
        )
    return example


def build(cls: type[Generator], seed: int = 0) -> Generator:
    """The example instance, initialised from ``seed``, in eval mode."""
    example = example_of(cls)
    torch.manual_seed(seed)
    try:
        model = cls.from_config(example.config)
    except ZooError as exc:
        raise ConformanceError("example declared", f"{cls.__name__}.example: {exc}") from None
    return model.eval()


def draw(model: Generator, n: int = N, **kwargs: Any) -> torch.Tensor | list[str]:
    options = {**example_of(type(model)).sample_options, **kwargs}
    return model.sample(n, **options)


def same(a: Any, b: Any, exact: bool = True) -> bool:
    """Whether two draws are equal: lists of strings exactly; tensors exactly, or up to
    float32 rounding when the batch composition differs (``exact=False``)."""
    if isinstance(a, list) or isinstance(b, list):
        return a == b
    if a.shape != b.shape:
        return False
    if exact:
        return torch.equal(a, b)
    return torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- sampling
def check_sample_form(cls: type[Generator]) -> None:
    """``sample(n)`` returns exactly ``n`` samples in the canonical form of the modality."""
    model = build(cls)
    if "sample" not in model.capabilities:
        return
    for n in (1, 3):
        out = draw(model, n, seed=0)
        _check_form(model, out, n)


def _check_form(model: Generator, out: Any, n: int) -> None:
    rule, name = "sample form", model.name
    if model.modality == "text":
        if not isinstance(out, list) or not all(isinstance(t, str) for t in out):
            raise ConformanceError(rule, f"{name} is a text model: sample() must return list[str]")
        if len(out) != n:
            raise ConformanceError("sample count", f"{name}.sample({n}) returned {len(out)}")
        return
    if not isinstance(out, torch.Tensor):
        raise ConformanceError(rule, f"{name}.sample() returned {type(out).__name__}, not a tensor")
    if out.shape[0] != n:
        raise ConformanceError("sample count", f"{name}.sample({n}) returned {out.shape[0]}")
    ndim = {"image": 4, "audio": 2, "sequence": 3, "points": 2}[model.modality]
    if out.dim() != ndim:
        raise ConformanceError(
            rule, f"{name}: {model.modality} samples are {ndim}-D, got shape {tuple(out.shape)}"
        )
    if out.dtype != torch.float32:
        raise ConformanceError(rule, f"{name}: samples must be float32, got {out.dtype}")
    if not bool(torch.isfinite(out).all()):
        raise ConformanceError(rule, f"{name}: samples hold NaN or infinite values")
    bounds = {"image": (0.0, 1.0), "audio": (-1.0, 1.0)}.get(model.modality)
    if bounds and (out.min() < bounds[0] or out.max() > bounds[1]):
        raise ConformanceError(
            rule,
            f"{name}: {model.modality} samples must lie in [{bounds[0]:g}, {bounds[1]:g}], got "
            f"[{out.min():.4g}, {out.max():.4g}]",
        )
    if model.modality == "audio" and not model.sample_rate:
        raise ConformanceError(rule, f"{name}: an audio model sets sample_rate")


def check_seeding(cls: type[Generator]) -> None:
    """The seeding rule: sample ``i`` of ``seed=s`` depends only on ``(s, i)``: the same
    call gives the same samples whatever torch's global generator holds; a prefix, a shard
    (``start``) and another batch size give the same samples; another seed differs."""
    model = build(cls)
    if "sample" not in model.capabilities:
        return
    torch.manual_seed(1)
    full = draw(model, N, seed=0)
    torch.manual_seed(2)  # a sampler drawing from the global generator now differs
    if not same(draw(model, N, seed=0), full):
        raise ConformanceError(
            "seeding rule: same seed, same samples",
            f"{model.name}.sample({N}, seed=0) differs between two calls: every random draw "
            f"must come from the Noise that sample_batch is given, not torch's global generator",
        )
    if not same(draw(model, N - 1, seed=0), full[: N - 1], exact=False):
        raise ConformanceError(
            "seeding rule: prefix",
            f"{model.name}.sample({N - 1}, seed=0) is not the first {N - 1} of "
            f"sample({N}, seed=0): sample i must not depend on n",
        )
    if not same(draw(model, 2, seed=0, start=2), full[2:], exact=False):
        raise ConformanceError(
            "seeding rule: start",
            f"{model.name}.sample(2, seed=0, start=2) is not samples 2..3 of sample({N}, seed=0)",
        )
    if not same(draw(model, N, seed=0, batch_size=1), full, exact=False):
        raise ConformanceError(
            "seeding rule: batch size",
            f"{model.name}.sample({N}, seed=0, batch_size=1) differs from one batch of {N}: "
            f"sample i must not depend on batch_size",
        )
    if same(draw(model, N, seed=1), full, exact=False):
        raise ConformanceError(
            "seeding rule: seeds differ",
            f"{model.name}.sample({N}) gives the same samples for seed 0 and seed 1",
        )


# ----------------------------------------------------------------------------- persistence
def check_config_round_trip(cls: type[Generator]) -> None:
    """The config survives JSON: ``from_config(json(config))`` gives an equal config."""
    model = build(cls)
    dumped = json.loads(json.dumps(model.config.model_dump(mode="json")))
    again = cls.from_config(dumped).config
    if again != model.config:
        raise ConformanceError(
            "config round trip",
            f"{cls.__name__}.from_config(config.model_dump(mode='json')) gives another config",
        )


def check_save_load(cls: type[Generator]) -> None:
    """``save_pretrained`` then ``from_pretrained`` of the class gives the same tensors, bit
    for bit, the same config and the same samples."""
    model = build(cls, seed=3)
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        loaded = cls.from_pretrained(folder)
    rule = "save-load round trip"
    if type(loaded) is not cls or loaded.config != model.config:
        raise ConformanceError(rule, f"{cls.__name__}: the loaded model's class or config differs")
    mine, theirs = model.state_dict(), loaded.state_dict()
    if mine.keys() != theirs.keys():
        raise ConformanceError(rule, f"{cls.__name__}: the loaded tensors are named differently")
    for key, value in mine.items():
        if value.dtype != theirs[key].dtype or not torch.equal(value, theirs[key]):
            raise ConformanceError(rule, f"{cls.__name__}: tensor {key!r} changed on the way")
    if "sample" in model.capabilities and not same(draw(loaded, 2, seed=0), draw(model, 2, seed=0)):
        raise ConformanceError(rule, f"{cls.__name__}: the loaded model samples differently")


# ----------------------------------------------------------------------------- capabilities
def data_of(model: Generator, n: int = 2) -> Any:
    """``n`` examples in the model's data form: the example dataset's first, else its own
    samples."""
    example = example_of(type(model))
    if example.dataset is not None:
        return load_dataset(example.dataset, example.split).x[:n]
    return draw(model, n, seed=7)


def check_declared_capabilities(cls: type[Generator]) -> None:
    """Each declared capability works: ``log_prob`` finite, one value per example;
    ``encode``/``decode`` round the data's shape; ``inpaint`` keeps the shape;
    ``interpolate`` gives ``steps`` points; ``conditional`` takes ``labels``."""
    model = build(cls)
    caps = model.capabilities
    x = data_of(model) if caps & {"log_prob", "encode", "inpaint"} else None
    n = len(x) if x is not None else 0
    if "log_prob" in caps:
        value = model.log_prob(x)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != (n,):
            raise ConformanceError("capability log_prob", f"{model.name}.log_prob must be (N,)")
        if not bool(torch.isfinite(value).all()):
            raise ConformanceError("capability log_prob", f"{model.name}.log_prob is not finite")
    if "encode" in caps and "decode" in caps:
        back = model.decode(model.encode(x))
        if tuple(back.shape) != tuple(x.shape):
            raise ConformanceError(
                "capability encode/decode",
                f"{model.name}.decode(encode(x)) has shape {tuple(back.shape)}, x {tuple(x.shape)}",
            )
    if "inpaint" in caps:
        mask = torch.zeros(x.shape, dtype=torch.bool)
        mask[..., : max(1, x.shape[-2] // 2), :] = True  # the top half observed
        filled = model.inpaint(x, mask)
        if tuple(filled.shape) != tuple(x.shape):
            raise ConformanceError("capability inpaint", f"{model.name}.inpaint changed the shape")
    if "interpolate" in caps:
        ends = tuple(draw(model, 2, seed=5)) if "encode" in caps else (0, 1)
        path = model.interpolate(ends[0], ends[1], steps=3)
        if len(path) != 3:
            raise ConformanceError(
                "capability interpolate", f"{model.name}.interpolate(steps=3) gave {len(path)}"
            )
    if "conditional" in caps and "sample" in caps:
        _check_form(model, draw(model, 2, seed=0, labels=[0, 0]), 2)


def check_undeclared_capabilities(cls: type[Generator]) -> None:
    """Each capability the model does not declare raises ``CapabilityError``."""
    model = build(cls)
    calls = {
        "sample": lambda: model.sample(1, seed=0),
        "log_prob": lambda: model.log_prob(torch.zeros(1)),
        "encode": lambda: model.encode(torch.zeros(1)),
        "decode": lambda: model.decode(torch.zeros(1)),
        "inpaint": lambda: model.inpaint(torch.zeros(1), torch.zeros(1, dtype=torch.bool)),
        "interpolate": lambda: model.interpolate(0, 1, steps=3),
    }
    if "labels" in cls.SampleOptions.model_fields and "sample" in model.capabilities:
        calls["conditional"] = lambda: draw(model, 2, seed=0, labels=[0, 0])
    for capability, call in calls.items():
        if capability in model.capabilities:
            continue
        try:
            call()
        except CapabilityError:
            continue
        except Exception as exc:  # noqa: BLE001 - the rule is about which error
            raise ConformanceError(
                f"undeclared capability {capability}",
                f"{model.name} lacks {capability!r} but raised {type(exc).__name__}: {exc}; "
                f"raise zoo_core.errors.CapabilityError (Generator.capability_error)",
            ) from None
        raise ConformanceError(
            f"undeclared capability {capability}",
            f"{model.name} lacks {capability!r} but the call succeeded",
        )
    assert set(_METHOD_CAPABILITIES) < set(calls)  # the kit covers every method capability


# ----------------------------------------------------------------------------- training
def fixed_batch(trainer: Any, model: Generator, size: int = 8) -> Any:
    """The first ``size`` training examples of the example dataset (or of the model's own
    samples), through ``trainer.dataset``, collated as the training loop collates them."""

    example = example_of(type(model))
    if example.dataset is not None:
        data: Any = load_dataset(example.dataset, example.split)
    else:
        data = _Samples(draw(model, size, seed=11))
    examples = trainer.dataset(data)
    if len(examples) < 1:
        raise ConformanceError("training step", "the trainer's dataset holds no example")
    return collate([examples[i] for i in range(min(size, len(examples)))])


class _Samples:
    """A model's own samples in the shape of a loaded dataset (``x``, no labels)."""

    def __init__(self, x: Any):
        self.x, self.y = x, None

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[Any, None]:
        return self.x[index], None


def check_training_step(cls: type[Generator], trainer_cls: type, steps: int = 6) -> None:
    """On a fixed batch (and fixed training noise), each optimizer of the trainer, stepped
    alone with Adam, lowers its loss, and its gradients reach every parameter it updates."""
    for name in trainer_cls.optimizers:
        model = build(cls).train()
        trainer = trainer_cls(model, trainer_cls.Config(**example_of(cls).trainer))
        batch = fixed_batch(trainer, model)
        for module in trainer.modules().values():
            module.train()
        params = trainer.parameters(name)
        if not params:
            raise ConformanceError("training step", f"optimizer {name!r} updates no parameter")
        optimizer = torch.optim.Adam(params, lr=example_of(cls).lr)
        reached = torch.zeros(len(params), dtype=torch.bool)
        losses = []
        for step in range(steps + 1):
            torch.manual_seed(0)  # the same training noise at every step: a fixed objective
            optimizer.zero_grad(set_to_none=True)
            loss = trainer.training_step(batch, 0, name)["loss"]
            value = float(loss.detach())
            if not math.isfinite(value):
                raise ConformanceError("training step", f"{cls.__name__}: the loss is {value}")
            losses.append(value)
            if step == steps:
                break
            loss.backward()
            for i, p in enumerate(params):
                if p.grad is not None and bool((p.grad != 0).any()):
                    reached[i] = True
            optimizer.step()
        if not losses[-1] < losses[0]:
            raise ConformanceError(
                "training step lowers the loss",
                f"{cls.__name__}, optimizer {name!r}: {steps} Adam steps on a fixed batch took "
                f"the loss from {losses[0]:.6g} to {losses[-1]:.6g}",
            )
        if not bool(reached.all()):
            names = {id(p): k for k, p in trainer.modules()["model"].named_parameters()}
            for module_name, module in trainer.modules().items():
                names.update({id(p): f"{module_name}.{k}" for k, p in module.named_parameters()})
            missed = [names.get(id(p), "?") for p, r in zip(params, reached, strict=True) if not r]
            raise ConformanceError(
                "training step reaches every parameter",
                f"{cls.__name__}, optimizer {name!r}: no gradient reached {', '.join(missed[:5])}"
                + (f" and {len(missed) - 5} more" if len(missed) > 5 else ""),
            )


# ----------------------------------------------------------------------------- models
def check_card(model_id: str) -> None:
    """The card validates, names an architecture the same distribution registers, and its
    config builds that architecture."""

    card = zoo_core.model_card(model_id)
    cls = architecture_class(card.architecture, distribution=card.plugin)
    if cls.modality != card.modality:
        raise ConformanceError(
            "model card", f"{model_id}: card modality {card.modality!r}, class {cls.modality!r}"
        )
    if isinstance(card.config, dict):
        try:
            validate_config(cls, card.config)
        except ZooError as exc:
            raise ConformanceError("model card", f"{model_id}: {exc}") from None


def check_weights_offline(model_id: str) -> None:
    """Offline (sockets blocked, ``ZOO_NETWORK=never``), bundled weights (or weights already
    in the Hugging Face cache) load and sample; hub weights missing from the cache fail with
    WeightsUnavailableError naming how to get them, without a connection attempt."""

    card = zoo_core.model_card(model_id)
    with pytest.MonkeyPatch.context() as patch:
        attempts = block_network(patch)
        patch.setenv("ZOO_NETWORK", "never")  # as a user offline sets it
        try:
            model = zoo_core.load(model_id)
        except WeightsUnavailableError as exc:
            if isinstance(card.weights, BundledWeights):
                raise ConformanceError("weights offline", f"{model_id}: {exc}") from None
            if "zoo download" not in str(exc):
                raise ConformanceError(
                    "weights offline", f"{model_id}: the error does not say how to get them"
                ) from None
            model = None
    if attempts:
        raise ConformanceError("weights offline", f"{model_id} tried to connect: {attempts[0]}")
    if model is not None and "sample" in model.capabilities:
        example = type(model).example
        options = example.sample_options if example is not None else {}
        _check_form(model, model.sample(2, seed=0, **options), 2)


ARCHITECTURE_RULES = {
    "sample form": check_sample_form,
    "seeding rule": check_seeding,
    "config round trip": check_config_round_trip,
    "save-load round trip": check_save_load,
    "declared capabilities": check_declared_capabilities,
    "undeclared capabilities": check_undeclared_capabilities,
}
MODEL_RULES = {"model card": check_card, "weights offline": check_weights_offline}
# The rules that compare floats computed with other shapes (a prefix, a shard, another batch
# size; a loaded model's samples): marked ``numerics``, which ``make test`` reruns under AVX2.
NUMERIC_RULES = frozenset({"seeding rule", "save-load round trip"})


def check_architecture(cls: type[Generator], trainer_cls: type | None = None) -> None:
    """Every architecture rule, then the training step when a trainer is given."""
    for rule in ARCHITECTURE_RULES.values():
        rule(cls)
    if trainer_cls is not None:
        check_training_step(cls, trainer_cls)


__all__ = [
    "ARCHITECTURE_RULES",
    "MODEL_RULES",
    "NUMERIC_RULES",
    "ConformanceError",
    "build",
    "check_architecture",
    "check_training_step",
    "example_of",
    "fixed_batch",
]

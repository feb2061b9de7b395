"""The conformance kit (``zoo_core.testing``) holds plugins to the contract: it passes a
correct architecture, and each deliberately broken one fails with a message that names the
rule it broke, both through the check functions and through pytest's
``--zoo-conformance`` run of an installed (here: inline) plugin."""

from __future__ import annotations

import textwrap
from typing import ClassVar

import pytest
import torch
from pydantic import BaseModel, ConfigDict, Field

from zoo_core.errors import ConfigError
from zoo_core.generator import Example, Generator
from zoo_core.testing import checks
from zoo_core.testing.checks import ConformanceError
from zoo_core.trainer import Trainer


# ----------------------------------------------------------------------------- plugins
class LineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    dim: int = Field(2, ge=1, description="Dimension of each point.")


class LineOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    labels: list[int] | None = Field(None, description="Never allowed: unconditional.")


class Line(Generator):
    """Points ``a + b * eps`` with ``eps`` standard normal: a correct, tiny Generator."""

    architecture: ClassVar[str] = "line"
    Config: ClassVar[type[BaseModel]] = LineConfig
    SampleOptions: ClassVar[type[BaseModel]] = LineOptions
    capabilities: ClassVar[frozenset[str]] = frozenset({"sample", "log_prob"})
    modality: ClassVar[str] = "points"
    example: ClassVar[Example] = Example(config={"dim": 2})

    def __init__(self, config: LineConfig):
        super().__init__(config)
        self.a = torch.nn.Parameter(torch.randn(config.dim))
        self.log_b = torch.nn.Parameter(torch.zeros(config.dim))

    def check_call(self, n, options):
        if options.labels is not None:
            raise self.capability_error("conditional", "labels do not apply")

    def sample_batch(self, noise, options):
        return self.a + self.log_b.exp() * noise.randn(self.config.dim)

    def log_prob(self, x):
        z = (x - self.a) / self.log_b.exp()
        return (-0.5 * z**2 - self.log_b - 0.9189385332046727).sum(-1)


class LineTrainer(Trainer):
    architecture: ClassVar[str] = "line"

    def training_step(self, batch, step, optimizer):
        x, _ = batch
        return {"loss": -self.model.log_prob(x).mean()}


class GlobalRNG(Line):
    """Draws from torch's global generator instead of its Noise."""

    architecture: ClassVar[str] = "global-rng"

    def sample_batch(self, noise, options):
        return self.a + torch.randn(len(noise), self.config.dim)


class OneShort(Line):
    """Returns one sample fewer than asked."""

    architecture: ClassVar[str] = "one-short"

    def sample_batch(self, noise, options):
        return super().sample_batch(noise, options)[:-1]


class Drifting(Line):
    """Its weights drift on the way through save_pretrained and back."""

    architecture: ClassVar[str] = "drifting"

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict[prefix + "a"] = state_dict[prefix + "a"] + 1e-4
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class NoExample(Line):
    architecture: ClassVar[str] = "no-example"
    example: ClassVar[Example | None] = None


class WrongError(Line):
    """Refuses labels with a ConfigError instead of a CapabilityError."""

    architecture: ClassVar[str] = "wrong-error"

    def check_call(self, n, options):
        if options.labels is not None:
            raise ConfigError("labels do not apply")


class Frozen(Line):
    architecture: ClassVar[str] = "frozen"


class FrozenTrainer(LineTrainer):
    """Its loss never reaches the model's scale."""

    architecture: ClassVar[str] = "frozen"

    def training_step(self, batch, step, optimizer):
        x, _ = batch
        return {"loss": ((x - self.model.a) ** 2).mean()}


@pytest.fixture
def registered():
    """The test architectures, registered as one inline plugin (so that save-load finds
    them by name)."""
    import zoo_core
    from zoo_core.plugin_manager import get_plugin_manager

    class Plugin:
        @staticmethod
        @zoo_core.hookimpl
        def zoo_architectures():
            return {c.architecture: c for c in ALL}

        @staticmethod
        @zoo_core.hookimpl
        def zoo_trainers():
            return {"line": LineTrainer, "frozen": FrozenTrainer}

    pm = get_plugin_manager()
    pm.register(Plugin, name="kit-test")
    try:
        yield
    finally:
        pm.unregister(name="kit-test")


ALL = [Line, GlobalRNG, OneShort, Drifting, NoExample, WrongError, Frozen]


# ----------------------------------------------------------------------------- the checks
def test_a_correct_architecture_passes_every_rule(registered):
    checks.check_architecture(Line, LineTrainer)


@pytest.mark.parametrize(
    ("cls", "rule", "said"),
    [
        (GlobalRNG, "seeding rule: same seed, same samples", "not torch's global generator"),
        (OneShort, "sample count", r"sample\(1\) returned 0"),
        (Drifting, "save-load round trip", "tensor 'a' changed"),
        (NoExample, "example declared", "set the class attribute example"),
        (WrongError, "undeclared capability conditional", "raised ConfigError"),
    ],
)
def test_a_broken_architecture_fails_naming_its_rule(cls, rule, said, registered):
    with pytest.raises(ConformanceError, match=said) as caught:
        checks.check_architecture(cls)
    assert caught.value.rule == rule
    assert str(caught.value).startswith(f"[{rule}]")


def test_a_trainer_that_misses_a_parameter_fails_naming_it():
    with pytest.raises(ConformanceError, match="no gradient reached model.log_b") as caught:
        checks.check_training_step(Frozen, FrozenTrainer)
    assert caught.value.rule == "training step reaches every parameter"


def test_a_training_step_that_does_not_lower_the_loss_fails():
    class Rising(LineTrainer):
        def training_step(self, batch, step, optimizer):
            nll = -self.model.log_prob(batch[0]).mean()
            return {"loss": nll.detach() + (nll.detach() - nll)}  # the value of nll, ascending it

    with pytest.raises(ConformanceError, match="took the loss from") as caught:
        checks.check_training_step(Line, Rising)
    assert caught.value.rule == "training step lowers the loss"


# ----------------------------------------------------------------------------- the pytest plugin
def test_zoo_conformance_runs_the_kit_over_a_plugin(pytester):
    """``pytest --zoo-conformance=NAME`` collects the kit for every architecture and trainer
    of that plugin; the broken ones fail with the rule in the report."""
    pytester.makeconftest(
        textwrap.dedent(
            """
            import test_conformance_kit as kit
            from zoo_core.plugin_manager import get_plugin_manager

            def pytest_configure(config):
                class Plugin:
                    zoo_architectures = staticmethod(kit.zoo_core_hook(
                        "zoo_architectures", {"line": kit.Line, "global-rng": kit.GlobalRNG,
                                              "one-short": kit.OneShort}))
                    zoo_trainers = staticmethod(kit.zoo_core_hook(
                        "zoo_trainers", {"line": kit.LineTrainer}))
                get_plugin_manager().register(Plugin, name="zoo-kit-demo")
            """
        )
    )
    result = pytester.runpytest("--zoo-conformance=zoo-kit-demo", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    rules = len(checks.ARCHITECTURE_RULES)
    # line passes everything (and its training step); the two broken ones fail some rules
    assert outcomes["passed"] + outcomes["failed"] == 3 * rules + 1
    result.stdout.fnmatch_lines(
        [
            "*test_zoo_architecture?global-rng:seeding rule?*",
            "*test_zoo_architecture?one-short:sample form?*",
        ]
    )
    assert "[seeding rule: same seed, same samples]" in result.stdout.str()
    assert "[sample count]" in result.stdout.str()
    assert "line:" not in "".join(line for line in result.outlines if "FAILED" in line)


def test_zoo_conformance_names_an_unknown_distribution(pytester):
    result = pytester.runpytest("--zoo-conformance=no-such-plugin", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*no installed zoo plugin comes from a distribution*"])


def zoo_core_hook(name, value):
    """A hookimpl of ``name`` returning ``value`` (for the inline plugins above)."""
    import zoo_core

    def hook():
        return value

    hook.__name__ = name
    return zoo_core.hookimpl(hook)

"""The conformance kit's tests. pytest collects this module for ``--zoo-conformance=DIST``;
a plugin's suite collects it by star-importing it into a test module that names its
distribution:

    from zoo_core.testing.conformance import *  # noqa: F403

    DISTRIBUTION = "zoo-gan"

The tests are parametrized (by ``zoo_core.testing.plugin``) over every architecture and
model card the distribution registers; each failure names the rule it broke.
"""

from __future__ import annotations

from zoo_core.testing import checks


def test_zoo_architecture(zoo_architecture_rule):
    """One rule of the Generator contract (docs/api.md) for one architecture, on its
    ``example`` instance; the rules of ``checks.NUMERIC_RULES`` are marked ``numerics``."""
    cls, rule = zoo_architecture_rule
    checks.ARCHITECTURE_RULES[rule](cls)


def test_zoo_training_step(zoo_trainer):
    """A training step lowers the loss on a fixed batch and reaches every parameter."""
    cls, trainer_cls = zoo_trainer
    checks.check_training_step(cls, trainer_cls)


def test_zoo_model(zoo_model_rule):
    """One rule of the registry's contract (docs/registry.md) for one model card: the card
    validates; its weights load with sockets blocked."""
    model_id, rule = zoo_model_rule
    checks.MODEL_RULES[rule](model_id)


__all__ = ["test_zoo_architecture", "test_zoo_model", "test_zoo_training_step"]

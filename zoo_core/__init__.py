"""zoo: a plugin-based zoo of generative models.

``import zoo_core as zoo`` is cheap: torch is imported only when a model is built or loaded
(``zoo.load``, ``zoo.Generator``), never for listing models or reading cards.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from zoo_core import errors
from zoo_core.hookspecs import hookimpl

__version__ = "0.1.0"

# name -> module that defines it; imported on first access (PEP 562).
_LAZY = {
    "list_models": "zoo_core.registry",
    "model_card": "zoo_core.registry",
    "ModelCard": "zoo_core.card",
    "plugins": "zoo_core.plugin_manager",
    "evaluate": "zoo_core.evaluation.run",
    "load": "zoo_core.loading",
    "download": "zoo_core.loading",
    "from_pretrained": "zoo_core.loading",
    "architectures": "zoo_core.catalog",
    "Generator": "zoo_core.generator",
    "Example": "zoo_core.generator",
    "Trainer": "zoo_core.trainer",
    "Evaluator": "zoo_core.evaluator",
    "Noise": "zoo_core.seeding",
    "save_samples": "zoo_core.outputs",
    "get_settings": "zoo_core.settings",
}

if TYPE_CHECKING:
    from zoo_core.card import ModelCard
    from zoo_core.catalog import architectures
    from zoo_core.evaluation.run import evaluate
    from zoo_core.evaluator import Evaluator
    from zoo_core.generator import Example, Generator
    from zoo_core.loading import download, from_pretrained, load
    from zoo_core.outputs import save_samples
    from zoo_core.plugin_manager import plugins
    from zoo_core.registry import list_models, model_card
    from zoo_core.seeding import Noise
    from zoo_core.settings import get_settings
    from zoo_core.trainer import Trainer

__all__ = [
    "Evaluator",
    "Example",
    "Generator",
    "ModelCard",
    "Noise",
    "Trainer",
    "__version__",
    "architectures",
    "download",
    "errors",
    "evaluate",
    "from_pretrained",
    "get_settings",
    "hookimpl",
    "list_models",
    "load",
    "model_card",
    "plugins",
    "save_samples",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zoo_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

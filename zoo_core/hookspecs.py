"""The hooks through which plugins add to the zoo (pluggy project name ``zoo``).

A plugin is a module (found through the entry-point group ``zoo``) holding functions
marked ``@zoo_core.hookimpl`` whose names are the hooks below. Each hook is called with
no arguments, lazily, the first time the zoo needs what it provides, through the catalog
(:mod:`zoo_core.catalog`), which checks every value and caches the result until the set of
plugins changes. A hook that raises, or returns a value of the wrong kind, quarantines its
plugin: the other plugins keep working and ``zoo doctor`` shows the error.

Hook bodies should import heavy modules (torch, the model classes) inside the function,
so that ``zoo list`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from zoo_core.card import ModelCard
    from zoo_core.dataset import DatasetSpec
    from zoo_core.evaluator import Evaluator
    from zoo_core.extractor import ExtractorSpec
    from zoo_core.generator import Generator
    from zoo_core.trainer import Trainer

PROJECT = "zoo"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def zoo_architectures() -> dict[str, type[Generator]]:
    """Architectures this plugin implements.

    Called the first time an architecture is looked up (``zoo.load``, ``zoo train``,
    ``zoo.architectures()``), never while listing models.

    Returns:
        A mapping from architecture name (the ``architecture`` field of a model card, e.g.
        ``"ddpm-unet"``) to its :class:`zoo_core.Generator` subclass.
    """


@hookspec
def zoo_models() -> list[ModelCard | dict[str, Any]]:
    """Model cards this plugin adds beyond ``registry.yaml``.

    Called when the registry is first read (``zoo list``, ``zoo.model_card``, ``zoo.load``).
    Must be cheap: no torch import, no file downloads.

    Returns:
        A list of :class:`zoo_core.ModelCard` objects, or dicts that validate as one; each
        carries its ``id`` field.
    """


@hookspec
def zoo_trainers() -> dict[str, type[Trainer]]:
    """Trainers for this plugin's architectures.

    Called the first time ``zoo train`` looks up the trainer of a recipe's architecture.

    Returns:
        A mapping from architecture name to its :class:`zoo_core.Trainer` subclass.
    """


@hookspec
def zoo_evaluators() -> dict[str, type[Evaluator]]:
    """Metrics this plugin adds to the evaluation harness.

    Called the first time an evaluation or the leaderboard resolves a protocol's metric names
    (or needs a metric's declared facts: its direction, what it requires).

    Returns:
        A mapping from metric name (e.g. ``"fid"``) to its :class:`zoo_core.Evaluator`
        subclass.
    """


@hookspec
def zoo_datasets() -> dict[str, DatasetSpec]:
    """Datasets this plugin knows how to load.

    Called the first time a recipe or a protocol names a dataset
    (``zoo_core.data.load_dataset``).

    Returns:
        A mapping from dataset name to a :class:`zoo_core.data.DatasetSpec` (modality,
        per-example shape, splits, classes, source, license and its loader) of that name.
    """


@hookspec
def zoo_weight_converters() -> dict[str, Callable[..., Any]]:
    """Converters from foreign checkpoint formats into the native state dict.

    Called the first time ``zoo.load`` converts the ``format`` of a model card's weights
    source (the core registers ``native`` through this same hook).

    Returns:
        A mapping from format name (e.g. ``"diffusers"``) to a callable
        ``convert(files: zoo_core.weights.WeightFiles, card: ModelCard)`` returning
        ``(config, state_dict)``: the native architecture config (a dict, or ``None`` to use
        the card's) and a mapping from tensor name to tensor, named as in the native
        ``state_dict()``.
    """


@hookspec
def zoo_extractors() -> dict[str, ExtractorSpec]:
    """Feature extractors: the networks whose feature spaces FID-like metrics are computed in.

    Called the first time a protocol or ``zoo stats build`` names an extractor (the core
    registers ``inception-fid``, ``fashion-net`` and ``timm`` through this same hook).

    Returns:
        A mapping from extractor name to a :class:`zoo_core.extractor.ExtractorSpec` of that
        name: how to load it (``load(argument)``), whether its id takes an argument after a
        colon (``timm:<model name>``), and one line on what it is.
    """

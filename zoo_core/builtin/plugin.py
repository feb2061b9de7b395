"""Hook implementations of the core's built-ins: the plugin ``zoo-core``, named by zoo-core's
own entry point like any plugin. Each hook imports what it registers when it is called, so
that `zoo list` (which calls ``zoo_models`` alone) imports no torch."""

from __future__ import annotations

from zoo_core.hookspecs import hookimpl


@hookimpl
def zoo_architectures():
    # Deferred: the Gaussian mixture imports torch, which `zoo list` must not.
    from zoo_core.builtin.gmm import GaussianMixture

    return {GaussianMixture.architecture: GaussianMixture}


@hookimpl
def zoo_datasets():
    # Deferred: the loaders import torch (the 2-D mixtures draw with it); `zoo list` must not.
    from zoo_core.data.builtin import builtin_specs

    return builtin_specs()


@hookimpl
def zoo_weight_converters():
    # Deferred: the weights readers import torch, which `zoo list` must not.
    from zoo_core.weights.native import native_converter

    return {"native": native_converter}


@hookimpl
def zoo_trainers():
    # Deferred: the trainers import torch, which `zoo list` must not.
    from zoo_core.builtin.extractors.fashion_net_trainer import FashionNetTrainer
    from zoo_core.builtin.gmm_trainer import GaussianMixtureTrainer

    trainers = (GaussianMixtureTrainer, FashionNetTrainer)
    return {cls.architecture: cls for cls in trainers}


@hookimpl
def zoo_evaluators():
    # Deferred: the evaluators import torch, which `zoo list` must not.
    from zoo_core.builtin.evaluators import builtin_evaluators

    return builtin_evaluators()


@hookimpl
def zoo_extractors():
    # Deferred: the extractors import torch, which `zoo list` must not.
    from zoo_core.builtin.extractors import builtin_extractors

    return builtin_extractors()

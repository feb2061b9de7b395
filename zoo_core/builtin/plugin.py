"""Hook implementations of the core's built-ins (plugin name ``zoo-core``)."""

from __future__ import annotations

from zoo_core.hookspecs import hookimpl


@hookimpl
def zoo_architectures():
    from zoo_core.builtin.gmm import GaussianMixture

    return {GaussianMixture.architecture: GaussianMixture}


@hookimpl
def zoo_datasets():
    from zoo_core.data.builtin import builtin_specs

    return builtin_specs()


@hookimpl
def zoo_weight_converters():
    from zoo_core.loading import native_converter

    return {"native": native_converter}


@hookimpl
def zoo_trainers():
    from zoo_core.builtin.gmm_trainer import GaussianMixtureTrainer

    return {GaussianMixtureTrainer.architecture: GaussianMixtureTrainer}


@hookimpl
def zoo_evaluators():
    from zoo_core.evaluation.evaluators import builtin_evaluators

    return builtin_evaluators()

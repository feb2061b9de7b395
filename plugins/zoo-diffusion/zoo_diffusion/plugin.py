"""Hook implementations of zoo-diffusion: the `ddpm-unet` architecture, its trainer, and
the converter of diffusers `UNet2DModel` repositories."""

from __future__ import annotations

from zoo_core import hookimpl


@hookimpl
def zoo_architectures():
    from zoo_diffusion.ddpm import DDPM

    return {DDPM.architecture: DDPM}


@hookimpl
def zoo_trainers():
    from zoo_diffusion.trainer import DDPMTrainer

    return {DDPMTrainer.architecture: DDPMTrainer}


@hookimpl
def zoo_weight_converters():
    from zoo_diffusion.ddpm import convert_diffusers

    return {"diffusers": convert_diffusers}

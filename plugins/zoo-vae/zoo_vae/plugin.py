"""Hook implementations of zoo-vae: the VAE architectures, their trainers, and the converter
of diffusers `AutoencoderKL` repositories."""

from __future__ import annotations

from zoo_core import hookimpl


@hookimpl
def zoo_architectures():
    from zoo_vae.autoencoder_kl import AutoencoderKL
    from zoo_vae.conv_vae import ConvVAE
    from zoo_vae.vq_vae import VQVAE

    return {cls.architecture: cls for cls in (ConvVAE, VQVAE, AutoencoderKL)}


@hookimpl
def zoo_trainers():
    from zoo_vae.trainer import ConvVAETrainer, VQVAETrainer

    return {cls.architecture: cls for cls in (ConvVAETrainer, VQVAETrainer)}


@hookimpl
def zoo_weight_converters():
    from zoo_vae.autoencoder_kl import convert_diffusers_vae

    return {"diffusers-vae": convert_diffusers_vae}

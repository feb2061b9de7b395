"""Hook implementations of zoo-gan: the GAN architectures and their trainers."""

from __future__ import annotations

from zoo_core import hookimpl


@hookimpl
def zoo_architectures():
    from zoo_gan.cgan import CGAN
    from zoo_gan.dcgan import DCGAN
    from zoo_gan.mlp_gan import MLPGAN
    from zoo_gan.stylegan import StyleGAN

    return {cls.architecture: cls for cls in (DCGAN, CGAN, MLPGAN, StyleGAN)}


@hookimpl
def zoo_trainers():
    from zoo_gan.trainer import CGANTrainer, DCGANTrainer, MLPGANTrainer, StyleGANTrainer

    trainers = (DCGANTrainer, CGANTrainer, MLPGANTrainer, StyleGANTrainer)
    return {cls.architecture: cls for cls in trainers}

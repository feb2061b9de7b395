"""Hook implementations of zoo-autoregressive: PixelCNN, WaveNet and GPT, their trainers, and
the converter of transformers GPT-2 repositories."""

from __future__ import annotations

from zoo_core import hookimpl


@hookimpl
def zoo_architectures():
    from zoo_autoregressive.gpt import GPT
    from zoo_autoregressive.pixelcnn import PixelCNN
    from zoo_autoregressive.wavenet import WaveNet, WaveNetSeries

    return {cls.architecture: cls for cls in (PixelCNN, WaveNet, WaveNetSeries, GPT)}


@hookimpl
def zoo_trainers():
    from zoo_autoregressive.trainer import (
        GPTTrainer,
        PixelCNNTrainer,
        WaveNetSeriesTrainer,
        WaveNetTrainer,
    )

    trainers = (PixelCNNTrainer, WaveNetTrainer, WaveNetSeriesTrainer, GPTTrainer)
    return {cls.architecture: cls for cls in trainers}


@hookimpl
def zoo_weight_converters():
    from zoo_autoregressive.gpt import convert_transformers_gpt2

    return {"transformers-gpt2": convert_transformers_gpt2}

"""Training the autoregressive family through the shared loop. Every model of the family has
an exact likelihood, so each trainer minimises the exact negative log-likelihood of its data.

- ``pixelcnn``: the negative log-likelihood in nats per image (van den Oord et al. 2016,
  arXiv 1606.05328), given the batch's labels for a class-conditional model.
- ``wavenet``, ``wavenet-series``: the negative log-likelihood in nats per step of windows
  cut from every clip or series (van den Oord et al. 2016, arXiv 1609.03499); for
  ``wavenet-series`` the model's standardization (``shift``, ``scale``) is first set to the
  training data's mean and standard deviation.
- ``gpt``: the next-token cross-entropy in nats per token (Radford et al. 2019) on fixed
  windows of the tokenized corpus, its documents joined by the end-of-text token.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from zoo_autoregressive.gpt import GPT
from zoo_autoregressive.wavenet import WaveNetSeries
from zoo_core.errors import ConfigError
from zoo_core.trainer import Trainer

log = logging.getLogger(__name__)

LN2 = math.log(2.0)


# ------------------------------------------------------------------------------- pixelcnn
class PixelCNNTrainer(Trainer):
    """``training_step``: the exact negative log-likelihood in nats per image (the mean over
    the batch), with the batch's labels for a conditional model; logs bits/dim. No options
    of its own."""

    architecture: ClassVar[str] = "pixelcnn"

    def training_step(self, batch: Any, step: int, optimizer: str) -> dict[str, Any]:
        x, labels = batch if isinstance(batch, tuple | list) else (batch, None)
        model = self.model
        if model.config.num_classes is None:
            labels = None
        elif labels is None:
            raise ConfigError(
                f"{model.architecture} is class-conditional: train it on a labelled dataset"
            )
        nll = -model.log_prob_pixels(x, labels).sum((1, 2))  # (B,) nats per image
        loss = nll.mean()
        return {
            "loss": loss,
            "bits_per_dim": loss.detach() / (math.prod(x.shape[1:]) * LN2),
        }


# -------------------------------------------------------------------------------- wavenet
class WaveNetTrainerConfig(BaseModel):
    """The options of :class:`WaveNetTrainer` and :class:`WaveNetSeriesTrainer` (a recipe's
    ``trainer:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(64, ge=2, le=1_000_000, description="Steps per training example.")
    stride: int = Field(1, ge=1, description="Steps between the starts of two windows.")


class _Windows(torch.utils.data.Dataset):
    """Window j: series ``index[j][0]`` from step ``index[j][1]``, ``window`` steps."""

    def __init__(self, x, labels, index, window):
        self.x, self.labels, self.index, self.window = x, labels, index, window

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, j: int):
        i, s = self.index[j]
        window = self.x[i, s : s + self.window]
        if self.labels is None:
            return window
        return window, self.labels[i]


class WaveNetTrainer(Trainer):
    """``training_step``: the exact negative log-likelihood of a batch of windows, in nats
    per step (logged also in bits per step). ``dataset`` cuts every series (or clip) of the
    data into windows of ``window`` steps every ``stride`` steps; for ``wavenet-series`` it
    also sets the model's ``shift`` and ``scale`` to the training data's mean and standard
    deviation per channel."""

    architecture: ClassVar[str] = "wavenet"
    Config: ClassVar[type[BaseModel]] = WaveNetTrainerConfig

    def dataset(self, data: Any) -> torch.utils.data.Dataset:
        x = torch.as_tensor(data.x)
        w = self.config.window
        if x.shape[1] < w:
            raise ConfigError(
                f"trainer.window {w} is longer than the data's series ({x.shape[1]} steps)"
            )
        if isinstance(self.model, WaveNetSeries):
            flat = x.reshape(-1, x.shape[-1]).float()
            with torch.no_grad():
                self.model.shift.copy_(flat.mean(0))
                self.model.scale.copy_(flat.std(0).clamp(min=1e-6))
        labels = getattr(data, "y", None)
        starts = range(0, x.shape[1] - w + 1, self.config.stride)
        index = [(i, s) for i in range(x.shape[0]) for s in starts]
        return _Windows(x, None if labels is None else torch.as_tensor(labels), index, w)

    def training_step(self, batch: Any, step: int, optimizer: str) -> dict[str, Any]:
        x, labels = batch if isinstance(batch, tuple | list) else (batch, None)
        model = self.model
        values = model.to_values(x)
        labels = labels if model.config.num_classes else None
        nll = -model.step_log_prob(model(values, labels), values).mean()
        return {"loss": nll, "bits_per_step": nll.detach() / LN2}


class WaveNetSeriesTrainer(WaveNetTrainer):
    """:class:`WaveNetTrainer`, registered for ``wavenet-series``."""

    architecture: ClassVar[str] = "wavenet-series"


# ------------------------------------------------------------------------------------ gpt
class GPTTrainerConfig(BaseModel):
    """The options of :class:`GPTTrainer` (a recipe's ``trainer:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int | None = Field(
        None, ge=1, description="Input tokens per training example; null: n_positions."
    )
    stride: int | None = Field(
        None, ge=1, description="Tokens between the starts of consecutive windows; null: window."
    )


class TokenWindows(torch.utils.data.Dataset):
    """Fixed windows of one token stream: example ``i`` is the ``window + 1`` tokens from
    ``i * stride`` (inputs and next-token targets), a function of ``i`` alone.

    Args:
        stream: ``(L,)`` int64 token ids.
        window: input tokens per example.
        stride: tokens between the starts of consecutive examples.
    """

    def __init__(self, stream: torch.Tensor, window: int, stride: int):
        if stream.numel() < window + 1:
            raise ConfigError(
                f"the training text is {stream.numel()} tokens, shorter than one window of "
                f"{window} + 1; lower trainer.window"
            )
        self.stream, self.window, self.stride = stream, window, stride

    def __len__(self) -> int:
        return (self.stream.numel() - self.window - 1) // self.stride + 1

    def __getitem__(self, index: int) -> torch.Tensor:
        first = index * self.stride
        return self.stream[first : first + self.window + 1]


class GPTTrainer(Trainer):
    """Trains ``gpt``: next-token cross-entropy (nats per token) on windows of the corpus.

    :meth:`dataset` joins the documents of a text dataset into one stream, each document
    preceded by the end-of-text token (GPT-2's separator, also the start token), and cuts it
    into :class:`TokenWindows`; ``training_step`` logs the loss and ``bits_per_token``.
    """

    architecture: ClassVar[str] = "gpt"
    Config: ClassVar[type[BaseModel]] = GPTTrainerConfig
    model: GPT
    config: GPTTrainerConfig

    def dataset(self, data: Any) -> TokenWindows:
        texts = getattr(data, "x", data)
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ConfigError(
                f"gpt trains on a text dataset (documents as str); "
                f"{getattr(data, 'name', 'this dataset')} is not one"
            )
        model, window = self.model, self.config.window or self.model.config.n_positions
        if window > model.config.n_positions:
            raise ConfigError(
                f"trainer.window {window} exceeds the model's context window n_positions "
                f"{model.config.n_positions}"
            )
        separator = model.config.eos_token_id
        separator = model.config.bos_token_id if separator is None else separator
        stream: list[int] = []
        for ids in model.text.encode(texts, "the training text"):
            stream += [separator, *ids]
        stream.append(separator)
        log.info("gpt training text: %d documents, %d tokens", len(texts), len(stream))
        tokens = torch.tensor(stream, dtype=torch.int64)
        return TokenWindows(tokens, window, self.config.stride or window)

    def training_step(self, batch: Any, step: int, optimizer: str) -> dict[str, Any]:
        ids = batch[0] if isinstance(batch, tuple | list) else batch  # (B, window + 1)
        logits = self.model(ids[:, :-1])  # (B, window, V)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten())
        return {"loss": loss, "bits_per_token": loss.detach() / LN2}

"""The ``Generator`` interface: one ``torch.nn.Module`` per model, whatever its family."""

from __future__ import annotations

import json
import math
import operator
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from zoo_core._io import atomic_write_bytes
from zoo_core.devices import resolve_device
from zoo_core.errors import CapabilityError, ConfigError, UnknownOptionError, WeightsNotFoundError
from zoo_core.modelcard import render_readme
from zoo_core.seeding import Noise, resolve_seed
from zoo_core.validation import one_line
from zoo_core.weights.formats import CONFIG_FILE, WEIGHTS_FILE, encode_safetensors, read_tensors
from zoo_core.weights.sources import read_config_file
from zoo_core.weights.state import load_state

if TYPE_CHECKING:
    from zoo_core.card import ModelCard


CAPABILITIES = frozenset(
    {"sample", "conditional", "log_prob", "encode", "decode", "inpaint", "interpolate"}
)
# Capabilities that stand for a method of the same name, which a subclass must override.
_METHOD_CAPABILITIES = ("log_prob", "encode", "decode", "inpaint", "interpolate")
MODALITIES = frozenset({"image", "audio", "sequence", "points", "text"})
CARD_FILE = "README.md"
TRAINING_FILE = "training.json"


@dataclass(frozen=True)
class Example:
    """A small instance of an architecture, for the conformance kit (``zoo_core.testing``)
    and for a plugin's own tests: it must build, sample and take a training step in about
    a second on one CPU core.

    Attributes:
        config: a small configuration (validated as the architecture's ``Config``).
        sample_options: keyword arguments that keep ``sample`` cheap (e.g. ``{"steps": 4}``).
        dataset: a dataset the config trains on (its first examples are the kit's fixed
            batch); ``None``: the model's own samples are the batch.
        split: the split of ``dataset``.
        trainer: options of the architecture's trainer (a recipe's ``trainer:``) that fit
            the small config.
        lr: the Adam learning rate of the kit's training-step check.
    """

    config: dict[str, Any]
    sample_options: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    split: str = "train"
    trainer: dict[str, Any] = field(default_factory=dict)
    lr: float = 1e-3


class NoSampleOptions(BaseModel):
    """A Generator whose ``sample`` takes no family-specific keyword arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Generator(nn.Module, ABC):
    """A generative model behind the zoo's one interface.

    Subclasses set the class attributes and implement :meth:`sample_batch` (and the methods
    of the capabilities they declare). They are built as ``cls(config)``; use
    :meth:`from_config` to validate a dict first.

    Class attributes:
        architecture: the architecture name the plugin registers the class under.
        Config: the pydantic model of the architecture's configuration (``extra="forbid"``).
        SampleOptions: the pydantic model of ``sample``'s family-specific keyword arguments.
        capabilities: a frozenset drawn from ``CAPABILITIES``; declared, never sniffed.
            Nearly every model declares ``"sample"``; one that cannot sample meaningfully
            (an autoencoder whose latent prior was never trained) leaves it out and says why
            in ``unsupported``.
        unsupported: capability -> why the model does not have it, for the
            ``CapabilityError`` a call raises (optional; e.g. ``{"sample": "..."}``).
        modality: the canonical sample form, one of ``MODALITIES``.
        example: a small :class:`Example` instance of the architecture, which the
            conformance kit (``pytest --zoo-conformance=DIST``) builds and checks.
    """

    architecture: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    SampleOptions: ClassVar[type[BaseModel]] = NoSampleOptions
    capabilities: ClassVar[frozenset[str]] = frozenset({"sample"})
    unsupported: ClassVar[dict[str, str]] = {}
    modality: ClassVar[str]
    default_batch_size: ClassVar[int] = 256
    sample_rate: ClassVar[int | None] = None  # audio only
    example: ClassVar[Example | None] = None

    def __init__(self, config: BaseModel):
        super().__init__()
        _check_declarations(type(self))
        if not isinstance(config, self.Config):
            raise TypeError(
                f"{type(self).__name__} is built from a {self.Config.__name__}, got "
                f"{type(config).__name__}; use {type(self).__name__}.from_config(...)"
            )
        self.config = config
        self.card: ModelCard | None = None
        # file name -> sha256 of the weights this model was loaded from (set by zoo.load)
        self.weights_sha256: dict[str, str] = {}

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_config(cls, config: dict[str, Any] | BaseModel) -> Self:
        """Validate ``config`` against ``cls.Config`` and build the model.

        Raises:
            ConfigError: an unknown field, a wrong type or a value out of range.
        """
        return cls(validate_config(cls, config))

    @property
    def name(self) -> str:
        """The model id when loaded from a card, else the architecture name."""
        return self.card.id if self.card is not None else self.architecture

    @property
    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        for tensor in self.buffers():
            return tensor.device
        return torch.device("cpu")

    # ----------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        seed: int | None = None,
        start: int = 0,
        batch_size: int | None = None,
        device: torch.device | str | None = None,
        progress: bool = False,
        **options: Any,
    ) -> torch.Tensor | list[str]:
        """Draw ``n`` samples in the canonical form of the model's modality.

        Args:
            n: number of samples, at least 1.
            seed: sample ``i`` depends only on ``(seed, i)`` and the model; ``None`` draws a
                fresh seed.
            start: the global index of the first sample: ``sample(n, seed=s, start=k)``
                equals ``sample(k + n, seed=s)[k:]``, so a shard of a large draw (one
                process's share, one cached block) is drawn on its own. Per-sample options
                (``labels``, ``x_T``) still have one entry per requested sample.
            batch_size: samples per forward pass (does not change the samples).
            device: where to sample; the model is moved there first.
            progress: show a progress bar over batches.
            **options: the family-specific keyword arguments of ``SampleOptions``.

        Returns:
            image ``(n, C, H, W)`` in [0, 1]; audio ``(n, T)`` in [-1, 1]; sequence
            ``(n, T, D)``; points ``(n, D)``; text ``list[str]`` of length ``n``.

        Raises:
            CapabilityError: the model does not declare ``"sample"`` (the error says why).
        """
        if "sample" not in self.capabilities:
            raise self._missing("sample")
        n = _check_count("n", n)
        if isinstance(start, bool) or not hasattr(type(start), "__index__") or start < 0:
            raise ConfigError(f"start must be a non-negative integer, got {start!r}")
        start = operator.index(start)
        batch_size = _check_count(
            "batch_size", self.default_batch_size if batch_size is None else batch_size
        )
        seed = resolve_seed(seed)
        opts = self.parse_sample_options(options)
        self.check_call(n, opts)
        if device is not None:
            self.to(resolve_device(device))
        device = self.device
        firsts = range(start, start + n, batch_size)
        if progress:
            from tqdm.auto import tqdm

            firsts = tqdm(firsts, desc=f"sampling {self.name}", unit="batch")
        parts = []
        for first in firsts:
            stop = min(start + n, first + batch_size)
            noise = Noise.for_range(seed, first, stop, device, origin=start)
            parts.append(self.sample_batch(noise, opts))
        if isinstance(parts[0], list):
            return [item for part in parts for item in part]
        return torch.cat(parts)

    def nfe(self, options: BaseModel) -> int | None:
        """Network evaluations per sample that ``sample`` makes with these options (for
        speed reports); ``None`` when the family has no such notion. Default: 1."""
        return 1

    def check_call(self, n: int, options: BaseModel) -> None:
        """Check options against the whole call before any batch is drawn (e.g. that
        per-sample ``labels`` has ``n`` entries); raise ``ConfigError``. Default: nothing."""

    @abstractmethod
    def sample_batch(self, noise: Noise, options: BaseModel) -> torch.Tensor | list[str]:
        """Draw one batch: ``len(noise)`` samples, every random number from ``noise``.

        Args:
            noise: the seeded draws for this batch's sample indices (see ``zoo_core.seeding``);
                index per-sample options with ``noise.positions``, not ``noise.indices``.
            options: the validated ``SampleOptions``.
        """

    def parse_sample_options(self, options: dict[str, Any]) -> BaseModel:
        """Validate ``sample``'s family-specific keyword arguments (see
        :meth:`check_sample_options`)."""
        return self.check_sample_options(options, self.name)

    @classmethod
    def check_sample_options(cls, options: dict[str, Any], name: str | None = None) -> BaseModel:
        """Validate ``sample``'s family-specific keyword arguments, without a model.

        Raises:
            UnknownOptionError: a keyword ``SampleOptions`` does not define (a TypeError).
            ConfigError: a value of the wrong type or out of range (a ValueError).
        """
        name = name or cls.architecture
        fields = cls.SampleOptions.model_fields
        unknown = sorted(set(options) - set(fields))
        if unknown:
            accepted = ", ".join(sorted(fields)) or "no family options"
            raise UnknownOptionError(
                f"{name}.sample() got unknown option(s) {', '.join(unknown)}; "
                f"it accepts: {accepted}"
            )
        try:
            return cls.SampleOptions.model_validate(options)
        except ValidationError as exc:
            raise ConfigError(f"{name}.sample(): {one_line(exc)}") from None

    # ----------------------------------------------------------------- capabilities
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log-likelihood of each example in nats, ``(N,)`` (exact or a documented bound)."""
        raise self._missing("log_prob")

    def bits_per_dim(self, x: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood in bits per dimension, ``(N,)``, from :meth:`log_prob`."""
        if "log_prob" not in self.capabilities:
            raise self._missing("log_prob")
        dims = math.prod(x.shape[1:])
        return -self.log_prob(x) / (dims * math.log(2.0))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map data to latents."""
        raise self._missing("encode")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Map latents to data."""
        raise self._missing("decode")

    def inpaint(self, x: torch.Tensor, mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Fill the entries of ``x`` where ``mask`` is False given the rest."""
        raise self._missing("inpaint")

    def interpolate(self, a: Any, b: Any, steps: int, **kwargs: Any) -> Any:
        """Samples along a path between two points of the latent space."""
        raise self._missing("interpolate")

    def _missing(self, capability: str) -> CapabilityError:
        return self.capability_error(capability)

    def capability_error(self, capability: str, reason: str | None = None) -> CapabilityError:
        """The error to raise when a call needs a capability this model lacks (e.g.
        ``labels`` given to an unconditional model: ``"conditional"``); ``reason`` defaults
        to the class's ``unsupported`` entry."""
        reason = reason or type(self).unsupported.get(capability)
        return CapabilityError(self.name, capability, self.capabilities, reason)

    # ----------------------------------------------------------------- persistence
    def save_pretrained(self, directory: str | Path, *, training: dict | None = None) -> Path:
        """Write ``config.json``, ``model.safetensors`` and a ``README.md`` model card.

        Each file is written atomically; what this writes, :meth:`from_pretrained` and
        ``zoo.load(..., weights=directory)`` read back exactly.

        Args:
            directory: created if missing.
            training: how the weights were trained (recipe, dataset, steps, wall time,
                hardware, final loss), recorded in the card and in ``training.json``.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"architecture": self.architecture, **self.config.model_dump(mode="json")}
        blob = encode_safetensors(self.state_dict(), {"architecture": self.architecture})
        atomic_write_bytes(directory / WEIGHTS_FILE, blob)
        atomic_write_bytes(directory / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())
        if training is not None:
            text = json.dumps(training, indent=2, sort_keys=True) + "\n"
            atomic_write_bytes(directory / TRAINING_FILE, text.encode())
        atomic_write_bytes(directory / CARD_FILE, render_readme(self, training).encode())
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Self:
        """Build and load a model of this class written by :meth:`save_pretrained`.

        Call it on the architecture's class (``GaussianMixture.from_pretrained(dir)``);
        ``zoo.from_pretrained(dir)`` finds the class from the architecture that
        ``config.json`` names, through the plugins.

        Raises:
            TypeError: called on ``Generator`` itself.
            WeightsNotFoundError: ``directory`` is not a directory.
            ConfigError: ``config.json`` names another architecture, or does not validate.
        """
        if cls is Generator:
            raise TypeError(
                "Generator.from_pretrained needs the architecture's class; use "
                "zoo.from_pretrained(directory), which finds it through the plugins"
            )
        directory = Path(directory)
        if not directory.is_dir():
            raise WeightsNotFoundError(
                f"{directory} is not a directory; pass the folder save_pretrained wrote"
            )
        config = read_config_file(directory / CONFIG_FILE)
        architecture = config.pop("architecture", None)
        if architecture not in (None, cls.architecture):
            raise ConfigError(
                f"{directory / CONFIG_FILE} holds a {architecture!r} model, not "
                f"{cls.architecture!r}; use zoo.from_pretrained or zoo.load(weights=...)"
            )
        model = cls.from_config(config)
        state = read_tensors(directory / WEIGHTS_FILE, allow_pickle=False)
        load_state(model, state, str(directory / WEIGHTS_FILE))
        return model.eval()


def validate_config(cls: type[Generator], config: dict[str, Any] | BaseModel) -> BaseModel:
    """``config`` validated as ``cls.Config`` (ConfigError with one line on failure)."""
    if isinstance(config, cls.Config):
        return config
    if isinstance(config, BaseModel):
        config = config.model_dump()
    if not isinstance(config, dict):
        raise ConfigError(f"{cls.__name__} config must be a mapping, got {type(config).__name__}")
    try:
        return cls.Config.model_validate(config)
    except ValidationError as exc:
        raise ConfigError(f"{cls.architecture} config: {one_line(exc)}") from None


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    value = operator.index(value)
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return value


_checked: set[type] = set()


def _check_declarations(cls: type[Generator]) -> None:
    """Capabilities are declared: each declared one has its method, and only those do."""
    if cls in _checked:
        return
    for attr in ("architecture", "Config", "modality"):
        if not hasattr(cls, attr):
            raise TypeError(f"{cls.__name__} must set the class attribute {attr!r}")
    if cls.modality not in MODALITIES:
        raise TypeError(f"{cls.__name__}.modality {cls.modality!r} is not one of {MODALITIES}")
    unknown = cls.capabilities - CAPABILITIES
    if unknown or not cls.capabilities:
        raise TypeError(
            f"{cls.__name__}.capabilities must be a non-empty set drawn from "
            f"{sorted(CAPABILITIES)}; unknown: {sorted(unknown)}"
        )
    for capability in _METHOD_CAPABILITIES:
        overridden = getattr(cls, capability) is not getattr(Generator, capability)
        declared = capability in cls.capabilities
        if overridden != declared:
            raise TypeError(
                f"{cls.__name__} {'overrides' if overridden else 'does not override'} "
                f"{capability}() but {'does not declare' if overridden else 'declares'} "
                f"the capability {capability!r}"
            )
    _checked.add(cls)

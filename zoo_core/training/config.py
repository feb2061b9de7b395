"""Recipes: what to train (architecture, config, dataset) and how (``TrainConfig``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zoo_core.errors import ConfigError
from zoo_core.validation import one_line


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OptimizerConfig(_Strict):
    """One optimizer of the trainer (adversarial trainers have several)."""

    name: Literal["adam", "adamw", "sgd"] = Field("adam", description="Algorithm.")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate.")
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = Field(
        (0.9, 0.999), description="Adam betas, each in [0, 1)."
    )
    eps: float = Field(1e-8, gt=0, description="Adam epsilon.")
    weight_decay: float = Field(0.0, ge=0, description="Weight decay (decoupled for adamw).")
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD momentum.")
    every: int = Field(1, ge=1, description="Update cadence: step when step % every == 0.")
    grad_clip: float | None = Field(
        None, gt=0, description="Clip the global gradient norm of its parameters to this."
    )


class OneCycleConfig(_Strict):
    """The one-cycle policy (Smith and Topin 2017, "Super-Convergence", arXiv 1708.07120), as
    ``torch.optim.lr_scheduler.OneCycleLR`` computes it with cosine annealing: the learning
    rate rises from ``lr / initial_div`` to ``lr`` over the first ``pct_start`` of the steps,
    then falls to ``lr / (initial_div * final_div)``; the momentum (Adam's beta1, SGD's
    momentum) falls from ``momentum[1]`` to ``momentum[0]`` and rises back."""

    pct_start: float = Field(0.3, gt=0, lt=1, description="Fraction of the steps rising.")
    initial_div: float = Field(25.0, gt=0, description="Peak lr over the starting lr.")
    final_div: float = Field(1e4, gt=0, description="Starting lr over the final lr.")
    momentum: tuple[float, float] | None = Field(
        (0.85, 0.95), description="(lowest, highest) momentum cycled; None: left as set."
    )


class ScheduleConfig(_Strict):
    """Learning rate: linear warm-up, then constant, linear or cosine decay; or one cycle."""

    warmup_steps: int = Field(0, ge=0, description="Steps of linear warm-up from 0.")
    decay: Literal["constant", "linear", "cosine"] = Field("constant", description="After warm-up.")
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="Final lr as a fraction of peak.")
    one_cycle: OneCycleConfig | None = Field(
        None, description="The one-cycle policy instead of warm-up and decay (and momentum)."
    )

    @model_validator(mode="after")
    def _one_shape(self) -> ScheduleConfig:
        defaults = {"warmup_steps": 0, "decay": "constant", "min_lr_ratio": 0.0}
        other = sorted(k for k, v in defaults.items() if getattr(self, k) != v)
        if self.one_cycle is not None and other:
            raise ValueError(f"one_cycle replaces {', '.join(other)}; give one or the other")
        return self


class EmaConfig(_Strict):
    """Exponential moving average of the generator's weights."""

    decay: float = Field(0.999, ge=0, lt=1, description="EMA decay per step.")
    start: int = Field(0, ge=0, description="Step at which averaging starts (copy before).")


class TrainConfig(_Strict):
    """How to train: every knob of the shared loop."""

    steps: int = Field(ge=1, description="Total optimisation steps.")
    batch_size: int = Field(ge=1, description="Global batch size (split across processes).")
    optimizers: dict[str, OptimizerConfig] = Field(
        default_factory=lambda: {"model": OptimizerConfig()},
        description="Optimizer per name the trainer declares.",
    )
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="LR schedule.")
    ema: EmaConfig | None = Field(default_factory=EmaConfig, description="EMA, or null for none.")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="fp32; bf16 autocast (CPU and CUDA); fp16 with a grad scaler (CUDA)."
    )
    log_every: int = Field(10, ge=1, description="Steps between metrics.jsonl records.")
    sample_every: int | None = Field(None, ge=1, description="Steps between sample grids.")
    sample_count: int = Field(64, ge=1, description="Samples per grid.")
    checkpoint_every: int = Field(1000, ge=1, description="Steps between checkpoints.")
    keep_last: int = Field(2, ge=1, description="Committed checkpoints kept on disk.")
    seed: int = Field(
        0, ge=0, lt=2**62, description="Seed of initialisation, data order and every RNG."
    )
    workers: int = Field(0, ge=0, description="DataLoader worker processes.")
    threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads of torch for the run (None: torch's default); float results "
        "on the CPU depend on it, so a recipe whose weights must repeat byte for byte pins it.",
    )
    device: str = Field("cpu", description="Device to train on (cpu, cuda, cuda:1, ...).")
    nan_patience: int = Field(
        10, ge=1, description="Stop after this many consecutive steps with a non-finite loss."
    )


class Recipe(_Strict):
    """A training run anyone can rerun: ``zoo train RECIPE.yaml --out DIR``."""

    architecture: str = Field(min_length=1, description="Architecture name.")
    config: dict[str, Any] = Field(default_factory=dict, description="Architecture config.")
    trainer: dict[str, Any] = Field(default_factory=dict, description="Trainer config.")
    dataset: str = Field(min_length=1, description="Dataset name (zoo_core.data).")
    split: str = Field("train", description="Dataset split to train on.")
    train: TrainConfig = Field(description="The loop's settings.")
    model_id: str | None = Field(None, description="Id the trained model is published under.")

    @model_validator(mode="after")
    def _schedule_fits(self) -> Recipe:
        if self.train.schedule.warmup_steps > self.train.steps:
            raise ValueError("schedule.warmup_steps exceeds train.steps")
        return self


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read and validate a recipe file, applying dotted ``overrides`` (``train.steps=10``).

    Raises:
        ConfigError: unreadable YAML, an unknown or mistyped key (named with its path).
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read recipe {path}: {exc.strerror}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"recipe {path} is not valid YAML: {exc}".split("\n")[0]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path} must be a mapping, got {type(data).__name__}")
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value, path)
    return validate_recipe(data, str(path))


def validate_recipe(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """``data`` as a :class:`Recipe`; a ``ConfigError`` naming each bad key otherwise."""
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {one_line(exc, whole='(recipe)')}") from None


def _set_dotted(data: dict[str, Any], key: str, value: Any, path: Path) -> None:
    node = data
    *parents, last = key.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part!r} in {path} is not a mapping")
        node = child
    node[last] = value

"""Runtime settings, read in this one place (environment variables prefixed ``ZOO_``).

No other module reads ``os.environ``. Settings are read afresh on each call of
:func:`get_settings`, so a change of environment (a test's ``monkeypatch.setenv``, a
user's shell) takes effect without restarting anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from zoo_core.errors import ConfigError
from zoo_core.validation import Problem, one_line

NetworkPolicy = Literal["never", "if-missing", "always"]


class ZooSettings(BaseSettings):
    """Every runtime knob of the zoo. Environment: ``ZOO_<FIELD>`` (upper case)."""

    # Lists are comma-separated in the environment, not JSON: the validator splits them.
    model_config = SettingsConfigDict(env_prefix="ZOO_", extra="ignore", enable_decoding=False)

    network: NetworkPolicy = Field(
        "if-missing",
        description="When Hub files may be fetched: never, if-missing (cache first), always.",
    )
    hf_hub_offline: bool | None = Field(
        None,
        validation_alias=AliasChoices("HF_HUB_OFFLINE"),
        description="Hugging Face's own offline switch; when set, the network policy is never.",
    )
    hub_cache: Path | None = Field(
        None, description="Hugging Face cache directory (default: huggingface_hub's)."
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "zoo",
        description="The zoo's own cache (reference statistics, evaluator weights).",
    )
    data_dir: Path | None = Field(None, description="Where datasets are looked for first.")
    extractor_dir: Path | None = Field(
        None,
        description="Where feature-extractor weight files (e.g. the FID Inception's "
        "pt_inception-2015-12-05-6726825d.pth) are looked for before the cache and the network.",
    )
    load_plugins: list[str] | None = Field(
        None,
        description="Allow-list of plugin entry points to load (comma-separated); "
        "empty loads none; unset loads all.",
    )
    disable_plugins: list[str] = Field(
        default_factory=list, description="Deny-list of plugin entry points (comma-separated)."
    )
    registry: list[Path] = Field(
        default_factory=list,
        description="Extra registry files (comma-separated), read after the built-in one.",
    )
    device: str | None = Field(None, description="Default device of zoo.load.")
    dtype: Literal["float32", "float64", "float16", "bfloat16"] | None = Field(
        None, description="Default dtype of zoo.load (models are loaded in float32, then cast)."
    )
    debug: bool = Field(False, description="Show tracebacks in the CLI.")
    rank: int = Field(
        0, validation_alias=AliasChoices("RANK"), description="Process rank (set by torchrun)."
    )
    world_size: int = Field(
        1,
        validation_alias=AliasChoices("WORLD_SIZE"),
        description="Number of processes (set by torchrun).",
    )
    local_rank: int = Field(
        0,
        validation_alias=AliasChoices("LOCAL_RANK"),
        description="Process rank on this machine (set by torchrun).",
    )

    @field_validator(
        "hf_hub_offline", "hub_cache", "data_dir", "extractor_dir", "device", "dtype", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # VAR= (set but empty) means unset, as huggingface_hub reads HF_HUB_OFFLINE; the
        # plugin lists are the exception: ZOO_LOAD_PLUGINS= means "load none".
        return None if value == "" else value

    @field_validator("load_plugins", "disable_plugins", "registry", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def effective_network(self) -> NetworkPolicy:
        return "never" if self.hf_hub_offline else self.network


def get_settings() -> ZooSettings:
    """The settings as the environment says now.

    Raises:
        ConfigError: an environment variable holds a value its setting does not accept.
    """
    _warn_unknown_variables()
    try:
        return ZooSettings()
    except ValidationError as exc:
        raise ConfigError(
            "invalid environment setting " + one_line(exc, describe=_variable)
        ) from None


def _variable(problem: Problem) -> str:
    """``VARIABLE='VALUE': WHAT`` for one bad setting."""
    name = str(problem.loc[0]) if problem.loc else "?"
    env = name if name.isupper() else f"ZOO_{name.upper()}"
    return f"{env}={problem.input!r}: {problem.message}"


_warned: set[str] = set()


def _warn_unknown_variables() -> None:
    """Warn once about each ``ZOO_*`` variable that names no setting (a misspelling)."""
    import difflib
    import os
    import warnings

    known = {f"ZOO_{name.upper()}" for name in ZooSettings.model_fields}
    for name in sorted(os.environ):
        if name.startswith("ZOO_") and name not in known and name not in _warned:
            _warned.add(name)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            warnings.warn(f"unknown setting {name} is ignored{hint}", UserWarning, stacklevel=3)

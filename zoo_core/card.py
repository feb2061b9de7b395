"""Model cards: where a model's weights come from, what it was trained on, what it scored.

A card is separate from the architecture config (what builds the module). Cards come from
``registry.yaml`` (a mapping ``id -> card``) and from plugins' ``zoo_models`` hook (cards
carrying their ``id``). Every model is pydantic with ``extra="forbid"``: a misspelled field
is an error that names the source, the model id, the field and what was expected.
"""

from __future__ import annotations

import difflib
import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from zoo_core.errors import RegistryError
from zoo_core.validation import Problem, one_line

MODEL_ID_PATTERN = r"^[a-z0-9][a-z0-9.-]*$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
Modality = Literal["image", "audio", "sequence", "points", "text"]

ModelId = Annotated[str, Field(pattern=MODEL_ID_PATTERN, max_length=128)]
Sha256 = Annotated[str, Field(pattern=SHA256_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BundledWeights(_Strict):
    """A file shipped inside a plugin's package (at most 10 MB)."""

    bundled: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[^:]+$",
        description="`package:relative/path` of the file inside an installed package.",
    )
    sha256: Sha256 = Field(description="sha256 of the file, checked before use (required).")
    format: str = Field("native", description="Checkpoint format; a converter reads others.")

    @field_validator("bundled")
    @classmethod
    def _inside_the_package(cls, value: str) -> str:
        relative = value.partition(":")[2]
        if relative.startswith("/") or ".." in relative.split("/"):
            raise ValueError(f"{value!r} must name a file inside the package (no '..')")
        return value


class HubWeights(_Strict):
    """Files of a Hugging Face Hub repository, fetched into huggingface_hub's cache."""

    hub: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Repository id, `org/name`.",
    )
    revision: str = Field("main", min_length=1, description="Branch, tag or commit hash.")
    files: list[str] = Field(min_length=1, description="Files of the repository to fetch.")
    format: str = Field("native", description="Checkpoint format; a converter reads others.")
    sha256: dict[str, Sha256] = Field(
        default_factory=dict, description="file -> sha256, checked before use."
    )
    allow_pickle: bool = Field(
        False,
        description="Whether pickle checkpoints (.bin/.pt/.ckpt) may be read (always "
        "with torch.load(weights_only=True)).",
    )

    @field_validator("files")
    @classmethod
    def _relative_files(cls, files: list[str]) -> list[str]:
        for name in files:
            if not name or name.startswith("/") or ".." in name.split("/"):
                raise ValueError(f"file {name!r} must be a relative path inside the repository")
        return files


def _weights_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return "bundled" if "bundled" in value else "hub" if "hub" in value else None
    return "bundled" if isinstance(value, BundledWeights) else "hub"


WeightsSource = Annotated[
    Annotated[BundledWeights, Tag("bundled")] | Annotated[HubWeights, Tag("hub")],
    Discriminator(
        _weights_kind,
        custom_error_type="weights_source",
        custom_error_message="expected a mapping with either `bundled:` or `hub:`",
    ),
]


class ModelCard(_Strict):
    """Everything the zoo knows of one model except the architecture's config schema."""

    id: ModelId = Field(description="Public model id, lowercase `<arch>-<dataset>`.")
    architecture: str = Field(min_length=1, description="Architecture name (zoo_architectures).")
    family: str = Field(
        pattern=r"^[a-z][a-z0-9-]*$", description="Model family (diffusion, gan, vae, ...)."
    )
    plugin: str = Field(min_length=1, description="Distribution providing the architecture.")
    modality: Modality = Field(description="Canonical sample form.")
    dataset: str = Field(min_length=1, description="Training dataset.")
    config: dict[str, Any] | str = Field(
        default_factory=dict,
        description="Architecture config, or the name of a file in the weights source.",
    )
    weights: WeightsSource | None = Field(None, description="Where the weights come from.")
    license: str | None = Field(None, description="License of the weights.")
    paper: str | None = Field(None, description="The paper behind the model.")
    reported: dict[str, float | str] | None = Field(
        None, description="Metrics from the paper, with their `protocol`."
    )
    description: str | None = Field(None, description="One paragraph for `zoo info`.")
    training: dict[str, Any] | None = Field(
        None,
        description="How the project trained these weights: recipe, steps, wall time, "
        "hardware, final loss (the `training.json` that `zoo train` writes).",
    )
    aliases: list[ModelId] = Field(
        default_factory=list, description="Deprecated ids that warn and redirect here."
    )

    @field_validator("reported", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key, metric in value.items():
                if isinstance(metric, bool):
                    raise ValueError(f"reported metric {key!r} must be a number, got {metric!r}")
        return value

    @field_validator("reported")
    @classmethod
    def _reported_has_protocol(cls, value: dict[str, float | str] | None) -> Any:
        if value is None:
            return value
        if not isinstance(value.get("protocol"), str):
            raise ValueError("reported metrics must name their `protocol` (a string)")
        for key, metric in value.items():
            if key == "protocol":
                continue
            if isinstance(metric, str) or not math.isfinite(metric):
                raise ValueError(f"reported metric {key!r} must be a finite number, got {metric!r}")
        return value


def parse_card(data: Any, source: str, model_id: str | None = None) -> ModelCard:
    """Validate one card, raising :class:`RegistryError` with a one-line message that names
    the source, the model id, each bad field and what was expected."""
    if isinstance(data, ModelCard):
        return data
    if not isinstance(data, dict):
        raise RegistryError(f"{source}: expected a card mapping, got {type(data).__name__}")
    model_id = model_id if model_id is not None else data.get("id")
    try:
        return ModelCard.model_validate(data)
    except ValidationError as exc:
        where = f"{source}: model {str(model_id)!r}" if model_id else source
        raise RegistryError(f"{where}: {one_line(exc, whole='(card)', describe=_field)}") from None


def _field(problem: Problem) -> str:
    """``field 'FIELD': WHAT (got VALUE)``, an unknown field with what it should have been."""
    got = problem.input
    got_text = repr(got) if not isinstance(got, dict) else "a mapping"
    if len(got_text) > 60:
        got_text = got_text[:57] + "..."
    what = _unknown_field(problem.loc) if problem.unknown else problem.message
    return f"field {problem.path!r}: {what} (got {got_text})"


def _unknown_field(loc: tuple[int | str, ...]) -> str:
    """What a misspelled or unknown field should have been: the closest or every name."""
    schema = {(): ModelCard, ("weights", "bundled"): BundledWeights, ("weights", "hub"): HubWeights}
    model = schema.get(tuple(loc[:-1]))
    if model is None:
        return "unknown field"
    names = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    if close:
        return f"unknown field; did you mean {close[0]!r}?"
    return f"unknown field; expected one of {', '.join(names)}"

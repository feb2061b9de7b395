"""The evaluation record: what one (model, protocol) evaluation measured and everything the
numbers depend on, one JSON object a line of a ``results.jsonl``.

It is the one contract between the evaluation that writes it, the results file, the
leaderboard that ranks it and the renderer that shows it: a typed, versioned pydantic model,
checked once where it is read, never re-checked field by field downstream.

Records are format 1. Fields were added to format 1 over time (``status``,
``lower_is_better``, ``speed``, ``environment``, ``versions``); a record written before one of
them existed still reads, with the field's default. A record of a newer format is refused,
naming the format, so an old zoo never misreads a new file.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zoo_core.errors import ResultsFileError
from zoo_core.protocol import Protocol
from zoo_core.validation import one_line

FORMAT = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Speed(_Strict):
    """How fast the model sampled under the protocol (the ``speed`` evaluator's figures)."""

    samples_per_s: float | None = Field(None, description="Samples per second per device.")
    latency_s: float | None = Field(None, description="Seconds for one sample alone.")
    nfe: float | None = Field(None, description="Network evaluations per sample.")
    batch_size: int | None = Field(None, description="The batch the throughput was drawn at.")


class Environment(_Strict):
    """Where the numbers were computed."""

    torch: str | None = Field(None, description="torch's version.")
    python: str | None = Field(None, description="Python's version.")
    device: str | None = Field(None, description="The device (cpu, cuda:0, ...).")
    device_name: str | None = Field(None, description="The CPU or GPU model.")
    cuda: str | None = Field(None, description="CUDA's version on a CUDA device.")
    world_size: int | None = Field(None, ge=1, description="Processes that shared the work.")


class EvaluationRecord(_Strict):
    """One evaluation (see the module docstring). ``status`` is ``failed`` with a one-line
    ``error`` when the evaluation raised, timed out or drew non-finite samples."""

    format: Literal[1] = Field(FORMAT, description="The record format.")
    model: str = Field(min_length=1, description="The model id.")
    family: str | None = Field(None, description="The model's family (from its card).")
    versions: dict[str, str] = Field(
        default_factory=dict, description="zoo-core's and the model's plugin's versions."
    )
    protocol: Protocol = Field(description="The whole resolved protocol (extractor sha256 in).")
    protocol_name: str = Field(description="The protocol's name.")
    protocol_hash: str = Field(min_length=1, description="The protocol's hash as measured.")
    variant: str | None = Field(None, description="The sweep variant; None: the protocol's own.")
    n_samples: int = Field(ge=1, description="Samples drawn (or examples scored).")
    seed: int = Field(ge=0, description="The sampling seed.")
    environment: Environment = Field(default_factory=Environment, description="Where it ran.")
    reported: dict[str, float] = Field(
        default_factory=dict, description="The paper's figures, where the card names this protocol."
    )
    time: str = Field("", description="When it finished (UTC, ISO 8601).")
    duration_s: float | None = Field(None, description="How long it took.")
    weights_sha256: dict[str, str] = Field(
        default_factory=dict, description="File name -> sha256 of each weights file."
    )
    weights_hash: str | None = Field(None, description="One hash over the weights.")
    status: Literal["ok", "failed"] = Field("ok", description="ok, or failed with an error.")
    error: str | None = Field(None, description="Why it failed, in one line.")
    metrics: dict[str, float | None] = Field(
        default_factory=dict, description="Metric name -> value (None: not finite)."
    )
    invalid: dict[str, str] = Field(
        default_factory=dict, description="Metric name -> why its value is not valid."
    )
    skipped: dict[str, str] = Field(
        default_factory=dict, description="Metric name -> why it was not computed."
    )
    lower_is_better: dict[str, bool] = Field(
        default_factory=dict, description="Metric name -> ranking direction."
    )
    speed: Speed = Field(default_factory=Speed, description="Sampling speed.")
    extractor_sha256: str | None = Field(None, description="The extractor's weights sha256.")

    @model_validator(mode="before")
    @classmethod
    def _absent_as_default(cls, data: Any) -> Any:
        """A ``null`` where a mapping belongs reads as the field's default, as an absent
        field does (records written before the field existed)."""
        if isinstance(data, dict):
            defaults = {"versions", "environment", "reported", "weights_sha256", "metrics",
                        "invalid", "skipped", "lower_is_better", "speed", "time"}  # fmt: skip
            data = {k: v for k, v in data.items() if not (v is None and k in defaults)}
        return data

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def options_for_family(self) -> dict[str, Any]:
        """The sampling options the model was evaluated with."""
        return self.protocol.options_for(self.family)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON values: non-finite floats as ``null`` (JSON has no NaN)."""
        return json.loads(self.model_dump_json(exclude={"protocol": {"nfe_sweep"}}))

    def line(self) -> str:
        """The record as one line of a results file (keys sorted, newline-terminated)."""
        return json.dumps(self.to_json(), sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def parse(cls, data: Any, where: str) -> EvaluationRecord:
        """``data`` (a record as JSON, or a record) checked as a record.

        Args:
            where: names the record in the error (``results.jsonl:12``).

        Raises:
            ResultsFileError: not an object with an integer ``format``, a format other than
                this zoo's, or a field that does not validate; the message names ``where``
                and the fields.
        """
        if isinstance(data, EvaluationRecord):
            return data
        fmt = data.get("format") if isinstance(data, dict) else None
        if not isinstance(fmt, int) or isinstance(fmt, bool):
            raise ResultsFileError(
                f"{where} is not a zoo result record (no integer 'format'); remove or repair it"
            )
        if fmt != FORMAT:
            newer = "newer than" if fmt > FORMAT else "other than"
            raise ResultsFileError(
                f"{where} has format {fmt}, {newer} the format this zoo reads ({FORMAT}); "
                + ("upgrade zoo-core" if fmt > FORMAT else "re-run the evaluation")
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ResultsFileError(
                f"{where} is not a valid result record: {one_line(exc)}; remove or repair it"
            ) from None


def utc_now() -> str:
    """The time a record is stamped with: UTC, ISO 8601, to the second."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

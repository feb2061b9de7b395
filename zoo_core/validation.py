"""A pydantic ``ValidationError`` as the zoo's one-line message.

Every config, card, recipe, protocol, setting and record of the zoo is a pydantic model, and
every one of them reports a bad value the same way: each problem as ``PATH: WHAT``, joined by
``; `` on one line, an unknown key called so (with what it should have been, where the
caller knows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    """One problem of a validation error.

    Attributes:
        loc: where, as pydantic gives it (``("train", "steps")``).
        path: ``loc`` dotted (``"train.steps"``), or the caller's word for the whole value.
        message: what was expected, without pydantic's ``Value error, `` prefix.
        unknown: whether the key is not a field of the model (``extra="forbid"``).
        input: the value that was given.
    """

    loc: tuple[int | str, ...]
    path: str
    message: str
    unknown: bool
    input: Any


def problems(error: ValidationError, *, whole: str = "(value)") -> list[Problem]:
    """The problems of ``error`` in order; ``whole`` names a problem of the value itself."""
    found = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        found.append(
            Problem(
                loc=loc,
                path=".".join(str(part) for part in loc) or whole,
                message=item["msg"].removeprefix("Value error, "),
                unknown=item["type"] == "extra_forbidden",
                input=item.get("input"),
            )
        )
    return found


def one_line(
    error: ValidationError,
    *,
    prefix: str = "",
    whole: str = "(value)",
    describe: Callable[[Problem], str] | None = None,
) -> str:
    """Every problem of ``error`` on one line.

    Args:
        prefix: put before each path (``"trainer."`` for a recipe's trainer options).
        whole: the path of a problem of the value itself.
        describe: how to write one problem (default ``PATH: WHAT``, ``unknown key`` for a
            key the model does not define).
    """

    def default(problem: Problem) -> str:
        what = "unknown key" if problem.unknown else problem.message
        return f"{prefix}{problem.path}: {what}"

    line = "; ".join((describe or default)(p) for p in problems(error, whole=whole))
    return " ".join(line.split())  # a message with newlines is still one line

"""Request and response bodies of the rating API (pydantic; unknown fields are refused)."""

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_RATIONALE = 2000

# ``assignment_id`` names one rater's assignment of a task (what /api/next hands out), not the task itself.


class VoteIn(BaseModel):
    """The body of ``POST /api/votes``."""

    model_config = ConfigDict(extra="forbid")
    assignment_id: str = Field(min_length=1, max_length=64)
    choice: Literal["left", "right", "tie", "both_bad"]
    rationale: str = Field(default="", max_length=MAX_RATIONALE)


class SkipIn(BaseModel):
    """The body of ``POST /api/skip``."""

    model_config = ConfigDict(extra="forbid")
    assignment_id: str = Field(min_length=1, max_length=64)


class ProgressOut(BaseModel):
    """A rater's progress: tasks answered or skipped, out of the tasks they can still expect."""

    done: int
    total: int


class TurnOut(BaseModel):
    """An earlier turn of the conversation."""

    role: str
    content: str


class TaskOut(BaseModel):
    """The body of ``GET /api/next``: the rater's current assignment, blind (no model names)."""

    assignment_id: str
    prompt: str
    context: list[TurnOut]
    left: str
    right: str
    progress: ProgressOut


_KNOWN_LOCATIONS = frozenset(
    {"body", "query", "path", "header", "cookie", "token", *VoteIn.model_fields, *SkipIn.model_fields}
)


def safe_validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors without the submitted values: where (known field names only), what rule, which type.

    Pydantic's errors carry the offending ``input`` (and ``ctx``), and an unknown field's name is itself
    input; echoing them sent a 30 MB body back as a 31 MB answer, and a NaN in the body made the error
    answer unserialisable (a 500).
    """
    safe = []
    for error in errors:
        loc = [p if isinstance(p, int) or p in _KNOWN_LOCATIONS else "(unknown field)" for p in error.get("loc", ())]
        safe.append({"loc": loc, "msg": str(error.get("msg", "invalid")), "type": str(error.get("type", "invalid"))})
    return safe

"""Request and response bodies of the rating API (pydantic; unknown fields are refused)."""

from typing import Literal

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

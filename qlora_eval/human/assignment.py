"""Who gets which task next: pure rules over a rater's assignments and votes (no I/O).

* each rater gets each task at most once (plus at most one self-consistency repeat, see below);
* a task is handed to at most ``raters_per_task`` raters; a pending assignment holds its slot for
  ``lease_s`` seconds, a skipped one frees it at once;
* tasks with the fewest raters go first, ties broken by a hash of (seed, rater, task), so raters spread out;
* which answer is on the left is drawn from a generator seeded by (seed, rater, task) and stored with the
  assignment, so a reload or a server restart shows the same page;
* ``repeats_per_rater`` of a rater's voted tasks come back later with the sides swapped, interleaved at
  random with new tasks, after at least ``repeat_gap`` other votes while new tasks remain.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from qlora_eval.errors import ConfigError
from qlora_eval.store import Assignment, Task, VoteRecord


@dataclass(frozen=True)
class RoundConfig:
    """The settings of a rating round.

    Attributes:
        raters_per_task: how many raters each task goes to (the QLoRA paper used 3).
        repeats_per_rater: how many of their tasks each rater sees a second time, sides swapped.
        seed: seeds the left/right draw and the order tasks are handed out in.
        lease_s: how long an unanswered assignment holds its slot before another rater may take it.
        repeat_gap: how many other votes a rater gives before one of their tasks may come back.
    """

    raters_per_task: int = 3
    repeats_per_rater: int = 3
    seed: int = 0
    lease_s: float = 1800.0
    repeat_gap: int = 3

    def __post_init__(self) -> None:
        if self.raters_per_task < 1:
            raise ConfigError(f"raters_per_task must be >= 1, got {self.raters_per_task}")
        if self.repeats_per_rater < 0:
            raise ConfigError(f"repeats_per_rater must be >= 0, got {self.repeats_per_rater}")
        if self.lease_s <= 0:
            raise ConfigError(f"lease_s must be > 0, got {self.lease_s}")
        if self.repeat_gap < 0:
            raise ConfigError(f"repeat_gap must be >= 0, got {self.repeat_gap}")


@dataclass(frozen=True)
class Progress:
    """A rater's progress: tasks answered or skipped, out of the tasks they can still expect."""

    done: int
    total: int

    def to_dict(self) -> dict[str, int]:
        return {"done": self.done, "total": self.total}


@dataclass(frozen=True)
class Pick:
    """A new assignment to make: the task, which model's answer goes left, and whether it is a repeat."""

    task_id: str
    left_model: str
    is_repeat: bool


def unit(*parts: Any) -> float:
    """A number in [0, 1) drawn from a generator seeded by ``parts`` (stable across runs and machines)."""
    seed = int(hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:16], 16)
    return float(np.random.default_rng(seed).random())


def lease_cutoff(lease_s: float, now: datetime) -> str:
    """The ``assigned_at`` before which an unanswered assignment no longer holds its slot."""
    return (now.astimezone(UTC) - timedelta(seconds=lease_s)).isoformat(timespec="seconds")


def pending(mine: Sequence[Assignment], tasks: Collection[str]) -> list[Assignment]:
    """The rater's unanswered, unskipped assignments of this round, oldest first."""
    return [a for a in mine if not a.skipped and not a.voted and a.task_id in tasks]


def open_tasks(
    first_assignments: Sequence[Assignment], tasks: Sequence[str], rater: str, config: RoundConfig, cutoff: str
) -> list[str]:
    """Tasks this rater has never had whose slots are not all taken, best first.

    Args:
        first_assignments: every rater's first-time (not repeat) assignments.
        tasks: the round's task ids.
        rater: who asks.
        config: the round's settings.
        cutoff: see ``lease_cutoff``.
    """
    holders: dict[str, int] = defaultdict(int)
    mine: set[str] = set()
    for a in first_assignments:
        if a.rater == rater:
            mine.add(a.task_id)
        if not a.skipped and (a.voted or a.assigned_at >= cutoff):
            holders[a.task_id] += 1
    cap = config.raters_per_task
    open_ = [t for t in tasks if t not in mine and holders[t] < cap]
    open_.sort(key=lambda t: (holders[t], unit("order", config.seed, rater, t)))
    return open_


def repeat_candidates(
    mine: Sequence[Assignment],
    my_votes: Sequence[VoteRecord],
    tasks: Collection[str],
    rater: str,
    config: RoundConfig,
    *,
    need_gap: bool,
) -> list[str]:
    """Voted first-time tasks of this rater that may come back (sides swapped), best first."""
    repeated = {a.task_id for a in mine if a.is_repeat}
    if sum(1 for t in repeated if t in tasks) >= config.repeats_per_rater:
        return []
    out: list[str] = []
    for i, v in enumerate(my_votes):
        later = len(my_votes) - 1 - i
        if v.is_repeat or v.task_id in repeated or v.task_id not in tasks:
            continue
        if need_gap and later < config.repeat_gap:
            continue
        out.append(v.task_id)
    out.sort(key=lambda t: unit("repeat", config.seed, rater, t))
    return out


def choose(
    mine: Sequence[Assignment],
    my_votes: Sequence[VoteRecord],
    open_: Sequence[str],
    tasks: Mapping[str, Task],
    rater: str,
    config: RoundConfig,
) -> Pick | None:
    """The rater's next new assignment (a repeat or an open task), or None when nothing is left."""
    repeats = repeat_candidates(mine, my_votes, tasks, rater, config, need_gap=bool(open_))
    seed = config.seed
    # Repeats are interleaved at random (not all at the end) so a rater cannot tell them apart.
    if repeats and (not open_ or unit("repeat-now", seed, rater, len(my_votes)) < 0.5):
        task_id = repeats[0]
        first_left = next(a.left_model for a in mine if a.task_id == task_id and not a.is_repeat)
        return Pick(task_id, tasks[task_id].other(first_left), is_repeat=True)
    if open_:
        task = tasks[open_[0]]
        left = task.model_x if unit("side", seed, rater, task.task_id) < 0.5 else task.model_y
        return Pick(task.task_id, left, is_repeat=False)
    return None


def progress(mine: Sequence[Assignment], tasks: Collection[str], n_open: int, config: RoundConfig) -> Progress:
    """The rater's progress from their assignments and the number of tasks still open to them."""
    done = pending_n = repeats_assigned = pending_first = voted_unrepeated = 0
    repeated = {a.task_id for a in mine if a.is_repeat and a.task_id in tasks}
    for a in mine:
        if a.task_id not in tasks:
            continue
        repeats_assigned += a.is_repeat
        if a.voted or a.skipped:
            done += 1
            if a.voted and not a.is_repeat and a.task_id not in repeated:
                voted_unrepeated += 1
        else:
            pending_n += 1
            pending_first += 0 if a.is_repeat else 1
    repeats_left = min(max(config.repeats_per_rater - repeats_assigned, 0), voted_unrepeated + pending_first + n_open)
    return Progress(done=done, total=done + pending_n + n_open + repeats_left)

"""Tasks, assignments and votes of a human rating round (store tables of migration 2).

A *task* is one prompt with the answers of two models (``model_x < model_y`` alphabetically). A rating
round is every task over a prompt set and a list of models. Rules:

* each rater gets each task at most once (plus at most one self-consistency repeat, see below);
* a task is handed to at most ``raters_per_task`` raters; a pending assignment holds its slot for
  ``lease_s`` seconds, a skipped one frees it at once;
* tasks with the fewest raters go first, ties broken by a hash of (seed, rater, task), so raters spread out;
* which answer is on the left is drawn from a generator seeded by (seed, rater, task) and stored with the
  assignment, so a reload or a server restart shows the same page;
* ``repeats_per_rater`` of a rater's voted tasks come back later with the sides swapped. Their votes are
  kept in ``web_votes`` only (``is_repeat = 1``) and measure self-consistency; only first votes become
  judgments (judge ``human:<rater>``), so rankings never count a repeat.

Every read-decide-write runs in one ``BEGIN IMMEDIATE`` transaction and the tables carry unique
constraints, so concurrent raters never get a slot twice or store a vote twice.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from itertools import combinations
from typing import Any

import numpy as np

from qlora_eval.errors import ConfigError, QloraEvalError
from qlora_eval.store import Store
from qlora_eval.types import Answer, Judgment, Message, Order, Prompt, Role, Verdict, content_key, utc_now
from qlora_eval.web.auth import Rater

HUMAN_TEMPLATE = "human-form-v1"
"""The ``template_hash`` of every judgment made through the form (it names the form's version)."""

HUMAN_JUDGE_PREFIX = "human:"


class Choice(Enum):
    """What a rater can answer, about the answers as shown."""

    LEFT = "left"
    RIGHT = "right"
    TIE = "tie"
    BOTH_BAD = "both_bad"

    @property
    def verdict(self) -> Verdict:
        """The verdict about the shown order (left = A)."""
        return {
            Choice.LEFT: Verdict.A,
            Choice.RIGHT: Verdict.B,
            Choice.TIE: Verdict.TIE,
            Choice.BOTH_BAD: Verdict.BOTH_BAD,
        }[self]


class VoteRejected(QloraEvalError):
    """A vote or skip that cannot be accepted; ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Task:
    """One prompt and two models' answers; ``model_x < model_y``."""

    task_id: str
    prompt_set: str
    prompt_id: str
    model_x: str
    model_y: str
    answer_x_key: str
    answer_y_key: str

    @property
    def pair(self) -> tuple[str, str]:
        return (self.model_x, self.model_y)

    def other(self, model: str) -> str:
        return self.model_y if model == self.model_x else self.model_x


@dataclass(frozen=True)
class Progress:
    """A rater's progress: tasks answered or skipped, out of the tasks they can still expect."""

    done: int
    total: int

    def to_dict(self) -> dict[str, int]:
        return {"done": self.done, "total": self.total}


@dataclass(frozen=True)
class ShownTask:
    """A task as one rater sees it (blind: no model names)."""

    assignment_id: str
    prompt: Prompt
    left_text: str
    right_text: str
    progress: Progress


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


def _unit(*parts: Any) -> float:
    """A number in [0, 1) drawn from a generator seeded by ``parts`` (stable across runs and machines)."""
    seed = int(hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:16], 16)
    return float(np.random.default_rng(seed).random())


def default_prompt_set(store: Store) -> str:
    """The only prompt set with answers in the store.

    Raises:
        ConfigError: no answers, or answers of several sets (then ``--prompts`` must choose).
    """
    sets = [r[0] for r in store.execute("SELECT DISTINCT prompt_set FROM answers ORDER BY prompt_set")]
    if len(sets) == 1:
        return str(sets[0])
    if not sets:
        raise ConfigError("the store has no answers to rate; run `qlora-eval generate` (or import answers) first")
    raise ConfigError(f"the store has answers for several prompt sets ({', '.join(sets)}); choose one with --prompts")


class RatingRound:
    """The tasks over one prompt set and list of models, and the rules that hand them to raters."""

    def __init__(
        self, store: Store, *, prompt_set: str, models: list[str] | None = None, config: RoundConfig | None = None
    ) -> None:
        """Build (and persist) the round's tasks from the stored answers.

        Args:
            store: an open store (schema 2 or later).
            prompt_set: the prompt set to rate.
            models: the models to compare (default: every model with answers in the set); at least two.
            config: round settings.

        Raises:
            ConfigError: fewer than two models with answers, a named model without answers, or answers
                whose prompt is not stored.
        """
        self.store = store
        self.prompt_set = prompt_set
        self.config = config or RoundConfig()
        answers = store.answers(models=models, prompt_set=prompt_set)
        present = sorted({a.model for a in answers})
        if models is not None:
            missing = sorted(set(models) - set(present))
            if missing:
                raise ConfigError(
                    f"model(s) {', '.join(missing)} have no answers for prompt set {prompt_set!r}; "
                    f"run `qlora-eval generate` for them first (models with answers: {', '.join(present) or 'none'})"
                )
        if len(present) < 2:
            raise ConfigError(
                f"rating needs answers of at least two models for prompt set {prompt_set!r}, found "
                f"{len(present)} ({', '.join(present) or 'none'}); run `qlora-eval generate` first"
            )
        self.models = present
        # The newest answer of each model to each prompt version wins.
        latest: dict[tuple[str, str, str], Answer] = {}
        for a in answers:
            latest[(a.model, a.prompt_id, a.prompt_hash)] = a
        self.answers: dict[str, Answer] = {a.answer_key: a for a in latest.values()}
        self.prompts = self._load_prompts({(a.prompt_id, a.prompt_hash) for a in latest.values()})
        by_prompt: dict[tuple[str, str], list[Answer]] = defaultdict(list)
        for a in latest.values():
            by_prompt[(a.prompt_id, a.prompt_hash)].append(a)
        tasks: dict[str, Task] = {}
        self.task_prompt: dict[str, tuple[str, str]] = {}
        for key in sorted(by_prompt):
            group = sorted(by_prompt[key], key=lambda a: a.model)
            for ax, ay in combinations(group, 2):
                task_id = content_key("web-task", prompt_set, key[0], ax.model, ax.answer_key, ay.model, ay.answer_key)
                tasks[task_id[:32]] = Task(
                    task_id[:32], prompt_set, key[0], ax.model, ay.model, ax.answer_key, ay.answer_key
                )
                self.task_prompt[task_id[:32]] = key
        self.tasks = tasks
        with store.transaction() as conn:
            now = utc_now()
            conn.executemany(
                "INSERT OR IGNORE INTO web_tasks VALUES (?,?,?,?,?,?,?,?)",
                [
                    (t.task_id, t.prompt_set, t.prompt_id, t.model_x, t.model_y, t.answer_x_key, t.answer_y_key, now)
                    for t in tasks.values()
                ],
            )

    def _load_prompts(self, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], Prompt]:
        found: dict[tuple[str, str], Prompt] = {}
        rows = self.store.execute(
            "SELECT prompt_id, content_hash, turns, category, reference FROM prompts WHERE prompt_set = ?",
            (self.prompt_set,),
        )
        for row in rows:
            key = (row["prompt_id"], row["content_hash"])
            if key in wanted:
                found[key] = Prompt(
                    prompt_set=self.prompt_set,
                    prompt_id=row["prompt_id"],
                    turns=tuple(Message(Role(t["role"]), t["content"]) for t in json.loads(row["turns"])),
                    category=row["category"],
                    reference=row["reference"],
                )
        missing = sorted(wanted - set(found))
        if missing:
            ids = ", ".join(pid for pid, _ in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise ConfigError(
                f"{len(missing)} answered prompt(s) of set {self.prompt_set!r} are not in the store's prompts "
                f"table (ids {ids}); store the prompt set (e.g. run `qlora-eval generate` with it) first"
            )
        return found

    # -- handing out tasks ---------------------------------------------------------------------

    def next_for(self, rater: Rater) -> ShownTask | None:
        """The rater's current task: an unanswered one already assigned, else a new assignment; None when done."""
        with self.store.transaction() as conn:
            pending = self._pending(conn, rater.name)
            if pending:
                assignment_id, task_id, left = pending[0]
            else:
                picked = self._assign(conn, rater.name)
                if picked is None:
                    return None
                assignment_id, task_id, left = picked
            progress = self._progress(conn, rater.name)
        task = self.tasks[task_id]
        left_key = task.answer_x_key if left == task.model_x else task.answer_y_key
        right_key = task.answer_y_key if left == task.model_x else task.answer_x_key
        return ShownTask(
            assignment_id=assignment_id,
            prompt=self.prompts[self.task_prompt[task_id]],
            left_text=self.answers[left_key].text,
            right_text=self.answers[right_key].text,
            progress=progress,
        )

    def _pending(self, conn: sqlite3.Connection, rater: str) -> list[tuple[str, str, str]]:
        rows = conn.execute(
            "SELECT a.assignment_id, a.task_id, a.left_model FROM web_assignments a "
            "LEFT JOIN web_votes v ON v.assignment_id = a.assignment_id "
            "WHERE a.rater = ? AND a.skipped_at IS NULL AND v.assignment_id IS NULL ORDER BY a.rowid",
            (rater,),
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows if r[1] in self.tasks]

    def _open_tasks(self, conn: sqlite3.Connection, rater: str) -> list[str]:
        """Tasks this rater has never had whose slots are not all taken, best first."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=self.config.lease_s)).isoformat(timespec="seconds")
        holders: dict[str, int] = defaultdict(int)
        mine: set[str] = set()
        rows = conn.execute(
            "SELECT a.task_id, a.rater, a.skipped_at, a.assigned_at, v.assignment_id IS NOT NULL AS voted "
            "FROM web_assignments a LEFT JOIN web_votes v ON v.assignment_id = a.assignment_id "
            "WHERE a.is_repeat = 0"
        ).fetchall()
        for task_id, who, skipped_at, assigned_at, voted in rows:
            if who == rater:
                mine.add(task_id)
            if skipped_at is None and (voted or assigned_at >= cutoff):
                holders[task_id] += 1
        cap = self.config.raters_per_task
        open_ = [t for t in self.tasks if t not in mine and holders[t] < cap]
        seed = self.config.seed
        open_.sort(key=lambda t: (holders[t], _unit("order", seed, rater, t)))
        return open_

    def _repeat_candidates(self, conn: sqlite3.Connection, rater: str, *, need_gap: bool) -> list[str]:
        """Voted first-time tasks of this rater that may come back (sides swapped), best first."""
        repeated = {
            r[0]
            for r in conn.execute(
                "SELECT task_id FROM web_assignments WHERE rater = ? AND is_repeat = 1", (rater,)
            ).fetchall()
        }
        if sum(1 for t in repeated if t in self.tasks) >= self.config.repeats_per_rater:
            return []
        votes = conn.execute(
            "SELECT rowid, task_id, is_repeat FROM web_votes WHERE rater = ? ORDER BY rowid", (rater,)
        ).fetchall()
        out: list[str] = []
        for i, (_, task_id, is_repeat) in enumerate(votes):
            later = len(votes) - 1 - i
            if is_repeat or task_id in repeated or task_id not in self.tasks:
                continue
            if need_gap and later < self.config.repeat_gap:
                continue
            out.append(task_id)
        seed = self.config.seed
        out.sort(key=lambda t: _unit("repeat", seed, rater, t))
        return out

    def _assign(self, conn: sqlite3.Connection, rater: str) -> tuple[str, str, str] | None:
        open_ = self._open_tasks(conn, rater)
        repeats = self._repeat_candidates(conn, rater, need_gap=bool(open_))
        n_votes = conn.execute("SELECT COUNT(*) FROM web_votes WHERE rater = ?", (rater,)).fetchone()[0]
        seed = self.config.seed
        # Repeats are interleaved at random (not all at the end) so a rater cannot tell them apart.
        if repeats and (not open_ or _unit("repeat-now", seed, rater, n_votes) < 0.5):
            task_id = repeats[0]
            first_left = conn.execute(
                "SELECT left_model FROM web_assignments WHERE rater = ? AND task_id = ? AND is_repeat = 0",
                (rater, task_id),
            ).fetchone()[0]
            left = self.tasks[task_id].other(first_left)
            is_repeat = 1
        elif open_:
            task_id = open_[0]
            task = self.tasks[task_id]
            left = task.model_x if _unit("side", seed, rater, task_id) < 0.5 else task.model_y
            is_repeat = 0
        else:
            return None
        assignment_id = content_key("web-assignment", rater, task_id, is_repeat)[:32]
        conn.execute(
            "INSERT INTO web_assignments (assignment_id, rater, task_id, is_repeat, left_model, assigned_at) "
            "VALUES (?,?,?,?,?,?)",
            (assignment_id, rater, task_id, is_repeat, left, utc_now()),
        )
        return assignment_id, task_id, left

    def _progress(self, conn: sqlite3.Connection, rater: str) -> Progress:
        rows = conn.execute(
            "SELECT a.task_id, a.is_repeat, a.skipped_at, v.assignment_id IS NOT NULL AS voted "
            "FROM web_assignments a LEFT JOIN web_votes v ON v.assignment_id = a.assignment_id WHERE a.rater = ?",
            (rater,),
        ).fetchall()
        done = pending = repeats_assigned = pending_first = voted_unrepeated = 0
        repeated = {r[0] for r in rows if r[1] and r[0] in self.tasks}
        for task_id, is_repeat, skipped_at, voted in rows:
            if task_id not in self.tasks:
                continue
            repeats_assigned += is_repeat
            if voted or skipped_at is not None:
                done += 1
                if voted and not is_repeat and task_id not in repeated:
                    voted_unrepeated += 1
            else:
                pending += 1
                pending_first += 0 if is_repeat else 1
        n_open = len(self._open_tasks(conn, rater))
        repeats_left = min(
            max(self.config.repeats_per_rater - repeats_assigned, 0), voted_unrepeated + pending_first + n_open
        )
        return Progress(done=done, total=done + pending + n_open + repeats_left)

    def progress(self, rater: Rater) -> Progress:
        """The rater's progress in this round."""
        with self.store.transaction() as conn:
            return self._progress(conn, rater.name)

    # -- votes ---------------------------------------------------------------------------------

    def _own_assignment(self, conn: sqlite3.Connection, rater: str, assignment_id: str) -> sqlite3.Row:
        row = conn.execute(
            "SELECT a.*, v.assignment_id IS NOT NULL AS voted FROM web_assignments a "
            "LEFT JOIN web_votes v ON v.assignment_id = a.assignment_id WHERE a.assignment_id = ?",
            (assignment_id,),
        ).fetchone()
        if row is None:
            if conn.execute("SELECT 1 FROM web_tasks WHERE task_id = ?", (assignment_id,)).fetchone():
                raise VoteRejected(400, f"task {assignment_id} is not assigned to you; ask GET /api/next for yours")
            raise VoteRejected(400, f"unknown task {assignment_id!r}; ask GET /api/next for your current task")
        if row["rater"] != rater:
            raise VoteRejected(400, f"task {assignment_id} is not assigned to you; ask GET /api/next for yours")
        if row["task_id"] not in self.tasks:
            raise VoteRejected(400, f"task {assignment_id} belongs to another rating round than the one served now")
        if row["voted"]:
            raise VoteRejected(409, f"you already voted on task {assignment_id}; a vote cannot be changed")
        if row["skipped_at"] is not None:
            raise VoteRejected(409, f"you skipped task {assignment_id}; it cannot be voted on any more")
        return row

    def vote(self, rater: Rater, assignment_id: str, choice: Choice, rationale: str = "") -> Progress:
        """Store a vote: a judgment under ``human:<rater>`` for a first vote, a repeat record otherwise.

        Raises:
            VoteRejected: unknown task (400), not this rater's (400), already voted or skipped (409).
                Nothing is stored then.
        """
        with self.store.transaction() as conn:
            row = self._own_assignment(conn, rater.name, assignment_id)
            task = self.tasks[row["task_id"]]
            left = row["left_model"]
            right = task.other(left)
            verdict = choice.verdict
            verdict_xy = verdict if left == task.model_x else verdict.swapped()
            judgment_key: str | None = None
            if not row["is_repeat"]:
                left_key = task.answer_x_key if left == task.model_x else task.answer_y_key
                right_key = task.answer_y_key if left == task.model_x else task.answer_x_key
                judgment = Judgment(
                    judge=rater.judge,
                    model_a=left,
                    model_b=right,
                    prompt_set=task.prompt_set,
                    prompt_id=task.prompt_id,
                    verdict=verdict,
                    order=Order.of(left, right),
                    template_hash=HUMAN_TEMPLATE,
                    answer_a_key=left_key,
                    answer_b_key=right_key,
                    rationale=rationale,
                )
                if self.store.add_judgments([judgment]) != 1:
                    raise VoteRejected(409, f"a judgment for task {assignment_id} by {rater.name} is already stored")
                judgment_key = judgment.judgment_key
            conn.execute(
                "INSERT INTO web_votes VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    assignment_id,
                    rater.name,
                    task.task_id,
                    int(row["is_repeat"]),
                    choice.value,
                    verdict_xy.value,
                    judgment_key,
                    rationale,
                    utc_now(),
                ),
            )
            return self._progress(conn, rater.name)

    def skip(self, rater: Rater, assignment_id: str) -> Progress:
        """Skip the rater's task: it is not shown to them again and its slot goes to another rater.

        Raises:
            VoteRejected: as for ``vote``.
        """
        with self.store.transaction() as conn:
            self._own_assignment(conn, rater.name, assignment_id)
            conn.execute(
                "UPDATE web_assignments SET skipped_at = ? WHERE assignment_id = ?", (utc_now(), assignment_id)
            )
            return self._progress(conn, rater.name)

    # -- reading back --------------------------------------------------------------------------

    def votes(self) -> list[VoteRecord]:
        """Every vote of this round, oldest first."""
        rows = self.store.execute(
            "SELECT rater, task_id, is_repeat, choice, verdict_xy, judgment_key, rationale, created_at "
            "FROM web_votes ORDER BY rowid"
        )
        return [
            VoteRecord(
                rater=r["rater"],
                task_id=r["task_id"],
                is_repeat=bool(r["is_repeat"]),
                choice=Choice(r["choice"]),
                verdict_xy=Verdict(r["verdict_xy"]),
                judgment_key=r["judgment_key"],
                rationale=r["rationale"],
                created_at=r["created_at"],
            )
            for r in rows
            if r["task_id"] in self.tasks
        ]

    def assignments(self) -> list[AssignmentRecord]:
        """Every assignment of this round, oldest first."""
        rows = self.store.execute(
            "SELECT a.rater, a.task_id, a.is_repeat, a.skipped_at, v.assignment_id IS NOT NULL AS voted "
            "FROM web_assignments a LEFT JOIN web_votes v ON v.assignment_id = a.assignment_id ORDER BY a.rowid"
        )
        return [
            AssignmentRecord(r["rater"], r["task_id"], bool(r["is_repeat"]), r["skipped_at"] is not None, bool(r[4]))
            for r in rows
            if r["task_id"] in self.tasks
        ]


@dataclass(frozen=True)
class VoteRecord:
    """One stored vote; ``verdict_xy`` is about the task's (model_x, model_y) order."""

    rater: str
    task_id: str
    is_repeat: bool
    choice: Choice
    verdict_xy: Verdict
    judgment_key: str | None
    rationale: str
    created_at: str


@dataclass(frozen=True)
class AssignmentRecord:
    """One assignment's state."""

    rater: str
    task_id: str
    is_repeat: bool
    skipped: bool
    voted: bool

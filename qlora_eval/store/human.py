"""Human rating records of the store (tables of migration 2, plus ``raters``): raters and the admin token,
tasks, assignments and votes. The rules that decide who gets which task live in ``qlora_eval.human``.

Votes are append-only (schema triggers). Tokens are stored as hashes only; these methods never see a
plain token.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from qlora_eval.store.core import StoreCore
from qlora_eval.types import Verdict, utc_now

ADMIN_NAME = "admin"
"""The name of the admin row in ``raters`` (``is_admin = 1``); not allowed as a rater name."""

HUMAN_JUDGE_PREFIX = "human:"
"""Judgments made from a rater's votes are stored under the judge id ``human:<rater>``."""


@dataclass(frozen=True)
class Rater:
    """A rater (or the admin) as stored, never with the plain token."""

    name: str
    is_admin: bool
    created_at: str
    revoked_at: str | None

    @property
    def judge(self) -> str:
        """The judge id this rater's votes are stored under."""
        return HUMAN_JUDGE_PREFIX + self.name


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
        """The task's model that is not ``model``."""
        return self.model_y if model == self.model_x else self.model_x


@dataclass(frozen=True)
class Assignment:
    """A task given to one rater (``is_repeat``: the self-consistency repeat), with its state."""

    assignment_id: str
    rater: str
    task_id: str
    is_repeat: bool
    left_model: str
    assigned_at: str
    skipped_at: str | None
    voted: bool

    @property
    def skipped(self) -> bool:
        return self.skipped_at is not None


@dataclass(frozen=True)
class VoteRecord:
    """One stored vote; ``verdict_xy`` is about the task's (model_x, model_y) order.

    ``judgment_key`` names the judgment a first vote became; repeat votes have none.
    """

    assignment_id: str
    rater: str
    task_id: str
    is_repeat: bool
    choice: Choice
    verdict_xy: Verdict
    judgment_key: str | None
    rationale: str
    created_at: str


_ASSIGNMENTS = (
    "SELECT a.assignment_id, a.rater, a.task_id, a.is_repeat, a.left_model, a.assigned_at, a.skipped_at, "
    "v.assignment_id IS NOT NULL AS voted FROM web_assignments a "
    "LEFT JOIN web_votes v ON v.assignment_id = a.assignment_id"
)


class HumanMixin(StoreCore):
    """Raters, the admin token, tasks, assignments and votes."""

    # -- raters --------------------------------------------------------------------------------

    def add_rater(self, name: str, token_hash: str) -> bool:
        """Create a rater with this token hash; False (nothing stored) when the name is taken, revoked or not."""
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM raters WHERE name = ?", (name,)).fetchone():
                return False
            conn.execute(
                "INSERT INTO raters (name, token_hash, is_admin, created_at) VALUES (?,?,0,?)",
                (name, token_hash, utc_now()),
            )
        return True

    def set_rater_token(self, name: str, token_hash: str) -> bool:
        """Replace an active rater's token hash; False when no active rater has this name."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE raters SET token_hash = ? WHERE name = ? AND is_admin = 0 AND revoked_at IS NULL",
                (token_hash, name),
            )
            return cur.rowcount == 1

    def revoke_rater(self, name: str) -> bool:
        """Mark an active rater revoked (their votes stay); False when no active rater has this name."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE raters SET revoked_at = ? WHERE name = ? AND is_admin = 0 AND revoked_at IS NULL",
                (utc_now(), name),
            )
            return cur.rowcount == 1

    def restore_rater(self, name: str, token_hash: str) -> bool:
        """Reinstate a revoked rater with a new token hash (the old token stays dead); False when no revoked
        rater has this name."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE raters SET revoked_at = NULL, token_hash = ? "
                "WHERE name = ? AND is_admin = 0 AND revoked_at IS NOT NULL",
                (token_hash, name),
            )
            return cur.rowcount == 1

    def raters(self) -> list[Rater]:
        """Every rater (the admin row excluded, revoked ones included), by name."""
        rows = self._rows(
            "SELECT name, created_at, revoked_at FROM raters WHERE is_admin = 0 ORDER BY name",
        )
        return [Rater(r["name"], False, r["created_at"], r["revoked_at"]) for r in rows]

    def add_admin(self, token_hash: str) -> bool:
        """Create the admin row with this token hash; False (nothing changed) when an admin exists."""
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM raters WHERE is_admin = 1").fetchone():
                return False
            conn.execute(
                "INSERT INTO raters (name, token_hash, is_admin, created_at) VALUES (?,?,1,?)",
                (ADMIN_NAME, token_hash, utc_now()),
            )
        return True

    def set_admin_token(self, token_hash: str) -> None:
        """Replace the admin's token hash, creating the admin row if there is none."""
        with self._tx() as conn:
            cur = conn.execute("UPDATE raters SET token_hash = ? WHERE is_admin = 1", (token_hash,))
            if cur.rowcount == 0:
                conn.execute(
                    "INSERT INTO raters (name, token_hash, is_admin, created_at) VALUES (?,?,1,?)",
                    (ADMIN_NAME, token_hash, utc_now()),
                )

    def rater_by_token_hash(self, token_hash: str) -> Rater | None:
        """The active (not revoked) rater or admin whose token has this hash, or None."""
        rows = self._rows(
            "SELECT name, is_admin, created_at, revoked_at FROM raters WHERE token_hash = ? AND revoked_at IS NULL",
            (token_hash,),
        )
        if not rows:
            return None
        r = rows[0]
        return Rater(r["name"], bool(r["is_admin"]), r["created_at"], r["revoked_at"])

    # -- tasks and assignments -----------------------------------------------------------------

    def add_tasks(self, tasks: Iterable[Task]) -> int:
        """Store tasks (a task already stored is kept as it is); returns how many were new."""
        now = utc_now()
        rows = [
            (t.task_id, t.prompt_set, t.prompt_id, t.model_x, t.model_y, t.answer_x_key, t.answer_y_key, now)
            for t in tasks
        ]
        with self._tx() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO web_tasks VALUES (?,?,?,?,?,?,?,?)", rows)
            return conn.total_changes - before

    def has_task(self, task_id: str) -> bool:
        """Whether a task with this id is stored (in any round)."""
        return bool(self._rows("SELECT 1 FROM web_tasks WHERE task_id = ?", (task_id,)))

    def add_assignment(self, assignment_id: str, rater: str, task_id: str, *, is_repeat: bool, left_model: str) -> None:
        """Give a task to a rater, showing ``left_model``'s answer on the left.

        Raises:
            sqlite3.IntegrityError: the rater already has this task (first or repeat, as ``is_repeat`` says).
        """
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO web_assignments (assignment_id, rater, task_id, is_repeat, left_model, assigned_at) "
                "VALUES (?,?,?,?,?,?)",
                (assignment_id, rater, task_id, int(is_repeat), left_model, utc_now()),
            )

    def assignment(self, assignment_id: str) -> Assignment | None:
        """One assignment with its state, or None."""
        rows = self._rows(_ASSIGNMENTS + " WHERE a.assignment_id = ?", (assignment_id,))
        return _assignment(rows[0]) if rows else None

    def assignments(self, *, rater: str | None = None, first_only: bool = False) -> list[Assignment]:
        """Assignments with their state, oldest first; of one rater, and only first-time ones, if asked."""
        sql, params = _ASSIGNMENTS + " WHERE 1=1", []
        if rater is not None:
            sql += " AND a.rater = ?"
            params.append(rater)
        if first_only:
            sql += " AND a.is_repeat = 0"
        return [_assignment(r) for r in self._rows(sql + " ORDER BY a.rowid", params)]

    def skip_assignment(self, assignment_id: str) -> None:
        """Mark an assignment skipped now (its slot is free for another rater)."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE web_assignments SET skipped_at = ? WHERE assignment_id = ?", (utc_now(), assignment_id)
            )

    # -- votes ---------------------------------------------------------------------------------

    def add_vote(self, vote: VoteRecord) -> None:
        """Store a vote (append-only).

        Raises:
            sqlite3.IntegrityError: the assignment already has a vote, or a first vote lacks its judgment key.
        """
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO web_votes VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    vote.assignment_id,
                    vote.rater,
                    vote.task_id,
                    int(vote.is_repeat),
                    vote.choice.value,
                    vote.verdict_xy.value,
                    vote.judgment_key,
                    vote.rationale,
                    vote.created_at,
                ),
            )

    def votes(self, *, rater: str | None = None) -> list[VoteRecord]:
        """Stored votes, oldest first; only one rater's if asked."""
        sql, params = "SELECT * FROM web_votes", []
        if rater is not None:
            sql += " WHERE rater = ?"
            params.append(rater)
        return [_vote(r) for r in self._rows(sql + " ORDER BY rowid", params)]

    def vote_counts(self) -> dict[str, tuple[int, int]]:
        """Rater -> (first votes, repeat votes), for raters with votes."""
        rows = self._rows("SELECT rater, SUM(is_repeat = 0), SUM(is_repeat = 1) FROM web_votes GROUP BY rater")
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def _assignment(r: sqlite3.Row) -> Assignment:
    return Assignment(
        assignment_id=r["assignment_id"],
        rater=r["rater"],
        task_id=r["task_id"],
        is_repeat=bool(r["is_repeat"]),
        left_model=r["left_model"],
        assigned_at=r["assigned_at"],
        skipped_at=r["skipped_at"],
        voted=bool(r["voted"]),
    )


def _vote(r: sqlite3.Row) -> VoteRecord:
    return VoteRecord(
        assignment_id=r["assignment_id"],
        rater=r["rater"],
        task_id=r["task_id"],
        is_repeat=bool(r["is_repeat"]),
        choice=Choice(r["choice"]),
        verdict_xy=Verdict(r["verdict_xy"]),
        judgment_key=r["judgment_key"],
        rationale=r["rationale"],
        created_at=r["created_at"],
    )

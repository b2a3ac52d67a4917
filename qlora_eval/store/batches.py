"""Batch API submissions of the store: which judgment keys are in flight, in which batch, in what state.

A submission's life (each step is written before the next network call, so a killed process can tell
what may exist on the server):

``intent`` (keys reserved, nothing sent) -> ``uploaded`` (input file id known) -> ``submitted`` (batch id
known) -> ``collected`` (results stored). ``abandoned``: no batch exists for it (never created, or created
by nobody as a listing of the server's batches showed); its keys are free again.

Keys of ``intent``, ``uploaded`` and ``submitted`` submissions are in flight: planning leaves them out, so
no key is ever part of two live batches.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from qlora_eval.errors import StoreError
from qlora_eval.store.core import StoreCore
from qlora_eval.types import canonical_json, utc_now


class SubmissionState(Enum):
    """Where a batch submission stands (see the module docstring)."""

    INTENT = "intent"
    UPLOADED = "uploaded"
    SUBMITTED = "submitted"
    COLLECTED = "collected"
    ABANDONED = "abandoned"

    @property
    def open(self) -> bool:
        """Whether its keys are in flight."""
        return self in (SubmissionState.INTENT, SubmissionState.UPLOADED, SubmissionState.SUBMITTED)


_OPEN = tuple(s.value for s in SubmissionState if s.open)


@dataclass(frozen=True)
class BatchSubmission:
    """One submission (one Batch API batch, or the attempt at one).

    Attributes:
        submission_id: our id, also sent as the batch's metadata (to find the batch after a crash).
        judge: the judge id of its judgments.
        endpoint: the API base URL it was sent to.
        state: see :class:`SubmissionState`.
        file_id, batch_id: the server's ids, once known.
        batch_status: the server's last reported status (``in_progress``, ``completed``, ``expired`` ...).
        note: why it was abandoned, or other words for people.
        summary: counts written when it was collected.
        run_id: the store run that submitted it.
        created_at, updated_at: UTC timestamps.
    """

    submission_id: str
    judge: str
    endpoint: str
    state: SubmissionState
    file_id: str | None
    batch_id: str | None
    batch_status: str | None
    note: str | None
    summary: dict[str, Any] | None
    run_id: int | None
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class BatchItem:
    """One request of a submission: its judgment key and what is needed to build the judgment (JSON)."""

    judgment_key: str
    request: dict[str, Any]


class BatchesMixin(StoreCore):
    """Batch submissions and their items."""

    def add_batch_submission(
        self,
        submission_id: str,
        *,
        judge: str,
        endpoint: str,
        items: Sequence[BatchItem],
        run_id: int | None = None,
    ) -> None:
        """Record the intent to submit ``items`` (state ``intent``); their keys are in flight from now on.

        Raises:
            StoreError: when a key is already in flight in another open submission (it would be paid twice).
        """
        if not items:
            raise ValueError("a batch submission needs at least one item")
        keys = [i.judgment_key for i in items]
        now = utc_now()
        with self._tx() as conn:
            busy = _in_flight(conn, keys)
            if busy:
                raise StoreError(
                    f"{len(busy)} judgment keys are already in an open batch (e.g. {sorted(busy)[0]}); "
                    "run 'qlora-eval judge --batch-status' to collect it first"
                )
            conn.execute(
                "INSERT INTO batch_submissions (submission_id, judge, endpoint, state, run_id, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (submission_id, judge, endpoint, SubmissionState.INTENT.value, run_id, now, now),
            )
            conn.executemany(
                "INSERT INTO batch_items (submission_id, judgment_key, request) VALUES (?,?,?)",
                [(submission_id, i.judgment_key, canonical_json(i.request)) for i in items],
            )

    def set_batch_file(self, submission_id: str, file_id: str) -> None:
        """The input file is uploaded (state ``uploaded``)."""
        self._move(submission_id, SubmissionState.UPLOADED, (SubmissionState.INTENT,), file_id=file_id)

    def set_batch_created(self, submission_id: str, batch_id: str, batch_status: str) -> None:
        """The batch exists on the server (state ``submitted``)."""
        self._move(
            submission_id,
            SubmissionState.SUBMITTED,
            (SubmissionState.UPLOADED,),
            batch_id=batch_id,
            batch_status=batch_status,
        )

    def set_batch_status(self, submission_id: str, batch_status: str) -> None:
        """The server's latest status of a submitted batch."""
        self._move(submission_id, SubmissionState.SUBMITTED, (SubmissionState.SUBMITTED,), batch_status=batch_status)

    def abandon_batch_submission(self, submission_id: str, note: str) -> None:
        """No batch exists for this submission; its keys are free again."""
        self._move(
            submission_id,
            SubmissionState.ABANDONED,
            (SubmissionState.INTENT, SubmissionState.UPLOADED),
            note=note,
        )

    def finish_batch_submission(self, submission_id: str, batch_status: str, summary: dict[str, Any]) -> None:
        """The batch ended and its results are stored (state ``collected``); its keys are free again."""
        self._move(
            submission_id,
            SubmissionState.COLLECTED,
            (SubmissionState.SUBMITTED,),
            batch_status=batch_status,
            summary=canonical_json(summary),
        )

    def batch_submissions(self, *, open_only: bool = False) -> list[BatchSubmission]:
        """Submissions, oldest first (only those whose keys are in flight with ``open_only``)."""
        sql = "SELECT * FROM batch_submissions"
        params: list[Any] = []
        if open_only:
            sql += f" WHERE state IN ({','.join('?' * len(_OPEN))})"
            params.extend(_OPEN)
        return [_submission(r) for r in self._rows(sql + " ORDER BY created_at, rowid", params)]

    def batch_submission(self, submission_id: str) -> BatchSubmission:
        """One submission by id.

        Raises:
            StoreError: no such submission.
        """
        rows = self._rows("SELECT * FROM batch_submissions WHERE submission_id = ?", (submission_id,))
        if not rows:
            raise StoreError(f"no batch submission {submission_id!r} in the store")
        return _submission(rows[0])

    def batch_items(self, submission_id: str) -> list[BatchItem]:
        """The items of a submission, in the order they were recorded."""
        rows = self._rows(
            "SELECT judgment_key, request FROM batch_items WHERE submission_id = ? ORDER BY rowid", (submission_id,)
        )
        return [BatchItem(r["judgment_key"], json.loads(r["request"])) for r in rows]

    def in_flight_keys(self) -> set[str]:
        """Judgment keys of every open submission (planning leaves them out)."""
        rows = self._rows(
            "SELECT i.judgment_key FROM batch_items i JOIN batch_submissions s USING (submission_id)"
            f" WHERE s.state IN ({','.join('?' * len(_OPEN))})",
            _OPEN,
        )
        return {r[0] for r in rows}

    def _move(
        self,
        submission_id: str,
        to: SubmissionState,
        allowed_from: tuple[SubmissionState, ...],
        **fields: str | None,
    ) -> None:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT state FROM batch_submissions WHERE submission_id = ?", (submission_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"no batch submission {submission_id!r} in the store")
            state = SubmissionState(row[0])
            if state not in allowed_from:
                raise StoreError(
                    f"batch submission {submission_id} is {state.value}; it cannot become {to.value} "
                    f"(only from {', '.join(s.value for s in allowed_from)})"
                )
            assignments = ", ".join(f"{name} = ?" for name in fields)
            conn.execute(
                f"UPDATE batch_submissions SET state = ?, updated_at = ?{', ' if fields else ''}{assignments}"
                " WHERE submission_id = ?",
                (to.value, utc_now(), *fields.values(), submission_id),
            )


def _in_flight(conn: Any, keys: Sequence[str]) -> set[str]:
    busy: set[str] = set()
    for start in range(0, len(keys), 500):  # SQLite's parameter limit
        chunk = list(keys[start : start + 500])
        rows = conn.execute(
            "SELECT i.judgment_key FROM batch_items i JOIN batch_submissions s USING (submission_id)"
            f" WHERE s.state IN ({','.join('?' * len(_OPEN))}) AND i.judgment_key IN ({','.join('?' * len(chunk))})",
            (*_OPEN, *chunk),
        ).fetchall()
        busy.update(r[0] for r in rows)
    return busy


def _submission(row: Any) -> BatchSubmission:
    return BatchSubmission(
        submission_id=row["submission_id"],
        judge=row["judge"],
        endpoint=row["endpoint"],
        state=SubmissionState(row["state"]),
        file_id=row["file_id"],
        batch_id=row["batch_id"],
        batch_status=row["batch_status"],
        note=row["note"],
        summary=json.loads(row["summary"]) if row["summary"] else None,
        run_id=row["run_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )

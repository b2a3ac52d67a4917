"""Runs (what a command did, for resuming and reports) and benchmark results of the store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from qlora_eval.store.core import StoreCore
from qlora_eval.types import canonical_json, utc_now


@dataclass(frozen=True)
class RunRecord:
    """One command run: its config, when it started and finished, its status and summary."""

    run_id: int
    command: str
    config: dict[str, Any]
    started_at: str
    finished_at: str | None
    status: str
    summary: dict[str, Any] | None


class RunsMixin(StoreCore):
    """Runs, benchmark results and table counts."""

    def start_run(self, command: str, config: dict[str, Any]) -> int:
        """Record that a command started; returns its run id."""
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO runs (command, config, started_at, status) VALUES (?,?,?,?)",
                (command, canonical_json(config), utc_now(), "running"),
            )
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any] | None = None) -> None:
        """Record how a run ended (``status``, e.g. ``done`` or ``interrupted``) and its summary."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE run_id = ?",
                (utc_now(), status, canonical_json(summary or {}), run_id),
            )

    def add_result(self, kind: str, subject: str, payload: dict[str, Any], *, run_id: int | None = None) -> None:
        """Store a benchmark result (MMLU, memory, throughput) as JSON."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO results (kind, subject, payload, run_id, created_at) VALUES (?,?,?,?,?)",
                (kind, subject, canonical_json(payload), run_id, utc_now()),
            )

    def results(self, kind: str | None = None) -> list[tuple[str, str, dict[str, Any], str]]:
        """(kind, subject, payload, created_at) of stored results, oldest first."""
        sql, params = "SELECT kind, subject, payload, created_at FROM results", []
        if kind is not None:
            sql += " WHERE kind = ?"
            params.append(kind)
        return [(r[0], r[1], json.loads(r[2]), r[3]) for r in self._rows(sql + " ORDER BY id", params)]

    def runs(self) -> list[RunRecord]:
        """Every recorded run, oldest first."""
        return [
            RunRecord(
                run_id=int(r["run_id"]),
                command=r["command"],
                config=json.loads(r["config"]),
                started_at=r["started_at"],
                finished_at=r["finished_at"],
                status=r["status"],
                summary=json.loads(r["summary"]) if r["summary"] is not None else None,
            )
            for r in self._rows("SELECT * FROM runs ORDER BY run_id")
        ]

    def counts(self) -> dict[str, int]:
        """Row counts per table (for status output and tests)."""
        tables = ["prompts", "models", "answers", "judgments", "judge_failures", "raters", "runs", "results"]
        return {t: int(self._rows(f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables}

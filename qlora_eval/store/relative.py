"""Answer ids given by other tools, and judgments of the relative protocol (pairs of 1-10 scores).

* ``answer_ids``: an external id (the QLoRA/FastChat ``answer_id``) -> the key of the stored answer, so
  files that name answers by id (the paper's relative reviews) can be linked to the answers.
* ``relative_judgments``: one row per relative call, append-only like ``judgments``. A table of its own:
  score pairs never appear among the pairwise verdicts that Elo and Bradley-Terry read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qlora_eval.store.core import StoreCore, call_filter
from qlora_eval.types import Order, RelativeJudgment, canonical_json, utc_now


@dataclass(frozen=True)
class AnswerRef:
    """A stored answer as an external id names it."""

    external_id: str
    answer_key: str
    model: str
    prompt_set: str
    prompt_id: str


class RelativeMixin(StoreCore):
    """External answer ids and relative judgments."""

    def add_answer_ids(self, pairs: Iterable[tuple[str, str]], *, source: str | None = None) -> int:
        """Record ``(external id, answer key)`` pairs (idempotent); returns how many were new."""
        rows = [(external_id, answer_key, source, utc_now()) for external_id, answer_key in pairs]
        with self._tx() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO answer_ids VALUES (?,?,?,?)", rows)
            return conn.total_changes - before

    def answers_by_id(self, external_ids: Iterable[str]) -> dict[str, list[AnswerRef]]:
        """External id -> the stored answers it names (ids not known are left out)."""
        ids = sorted(set(external_ids))
        found: dict[str, list[AnswerRef]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._rows(
                "SELECT i.external_id, a.answer_key, a.model, a.prompt_set, a.prompt_id FROM answer_ids i "
                f"JOIN answers a ON a.answer_key = i.answer_key WHERE i.external_id IN ({','.join('?' * len(chunk))}) "
                "ORDER BY i.external_id, a.model",
                chunk,
            )
            for row in rows:
                found.setdefault(row[0], []).append(AnswerRef(row[0], row[1], row[2], row[3], row[4]))
        return found

    def add_relative_judgments(self, judgments: Iterable[RelativeJudgment], *, run_id: int | None = None) -> int:
        """Store relative judgments; one whose content key is already stored is skipped. Returns how many were new."""
        rows = [_relative_row(j, run_id) for j in judgments]
        with self._tx() as conn:
            before = conn.total_changes
            conn.executemany(f"INSERT OR IGNORE INTO relative_judgments VALUES ({','.join('?' * 21)})", rows)
            return conn.total_changes - before

    def has_relative_judgment(self, judgment_key: str) -> bool:
        """Whether a relative judgment with this content key is stored (its call is never paid for again)."""
        return bool(self._rows("SELECT 1 FROM relative_judgments WHERE judgment_key = ?", (judgment_key,)))

    def relative_judgments(
        self,
        *,
        judges: Sequence[str] | None = None,
        models: Sequence[str] | None = None,
        prompt_set: str | None = None,
    ) -> list[RelativeJudgment]:
        """Stored relative judgments, oldest first; ``models`` keeps calls whose two models are both in it."""
        sql, params = call_filter("relative_judgments", judges=judges, models=models, prompt_set=prompt_set)
        return [_relative_from_row(r) for r in self._rows(sql, params)]


def _relative_row(j: RelativeJudgment, run_id: int | None) -> tuple[Any, ...]:
    score_a, score_b = j.scores if j.scores is not None else (None, None)
    return (
        j.judgment_key,
        j.judge,
        j.model_a,
        j.model_b,
        j.prompt_set,
        j.prompt_id,
        score_a,
        score_b,
        j.order.value,
        j.template_hash,
        j.answer_a_key,
        j.answer_b_key,
        j.rationale,
        canonical_json(j.settings),
        j.cost_usd,
        j.latency_s,
        j.prompt_tokens,
        j.completion_tokens,
        j.source,
        run_id,
        j.created_at,
    )


def _relative_from_row(row: sqlite3.Row) -> RelativeJudgment:
    scores = None if row["score_a"] is None else (float(row["score_a"]), float(row["score_b"]))
    return RelativeJudgment(
        judge=row["judge"],
        model_a=row["model_a"],
        model_b=row["model_b"],
        prompt_set=row["prompt_set"],
        prompt_id=row["prompt_id"],
        scores=scores,
        order=Order(row["answer_order"]),
        template_hash=row["template_hash"],
        answer_a_key=row["answer_a_key"],
        answer_b_key=row["answer_b_key"],
        rationale=row["rationale"],
        settings=json.loads(row["settings"]),
        cost_usd=row["cost_usd"],
        latency_s=row["latency_s"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        source=row["source"],
        created_at=row["created_at"],
    )

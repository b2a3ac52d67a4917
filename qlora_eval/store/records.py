"""Typed records of the store: prompts, models, answers, judgments and judge failures.

Content-hash keys: an answer or judgment with the same key is stored once (``INSERT OR IGNORE``), which is
what makes re-runs free and imports idempotent; answers and judgments are append-only (schema triggers).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qlora_eval.errors import ConfigError
from qlora_eval.store.core import StoreCore, call_filter
from qlora_eval.types import (
    Answer,
    Battle,
    Judgment,
    Message,
    Order,
    Prompt,
    Role,
    Verdict,
    canonical_json,
    utc_now,
)


@dataclass(frozen=True)
class StoredJudgment:
    """A judgment as read back, with its key and run."""

    key: str
    judgment: Judgment
    run_id: int | None


@dataclass(frozen=True)
class StoredPrompt:
    """One stored version of a prompt: its content hash and the version and hash of the set it came in."""

    content_hash: str
    set_version: str
    set_hash: str
    prompt: Prompt


@dataclass(frozen=True)
class JudgeFailure:
    """A judge call that failed after its retry budget (the next run retries it)."""

    judgment_key: str
    judge: str
    prompt_set: str
    prompt_id: str
    model_a: str
    model_b: str
    error: str
    attempts: int
    run_id: int | None
    created_at: str


class RecordsMixin(StoreCore):
    """Prompts, models, answers and judgments."""

    def add_prompts(self, prompts: Iterable[Prompt], *, set_version: str, set_hash: str) -> int:
        """Store prompts (idempotent); returns how many were new."""
        rows = [
            (
                p.prompt_set,
                p.prompt_id,
                p.content_hash,
                set_version,
                set_hash,
                canonical_json([t.to_dict() for t in p.turns]),
                p.category,
                p.reference,
                utc_now(),
            )
            for p in prompts
        ]
        with self._tx() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO prompts VALUES (?,?,?,?,?,?,?,?,?)", rows)
            return conn.total_changes - before

    def prompts(self, prompt_set: str) -> list[Prompt]:
        """The stored prompts of a set (latest content per id), in id order."""
        # rowid breaks ties: two versions stored within one second of each other keep their order.
        sql = "SELECT * FROM prompts WHERE prompt_set = ? ORDER BY prompt_id, created_at, rowid"
        rows = self._rows(sql, (prompt_set,))
        latest: dict[str, Prompt] = {}
        for row in rows:
            latest[row["prompt_id"]] = _prompt_from_row(row)
        return list(latest.values())

    def prompt_versions(self, prompt_set: str) -> list[StoredPrompt]:
        """Every stored version of every prompt of a set, with its content hash and set version, oldest first."""
        rows = self._rows("SELECT * FROM prompts WHERE prompt_set = ? ORDER BY created_at, rowid", (prompt_set,))
        return [StoredPrompt(r["content_hash"], r["set_version"], r["set_hash"], _prompt_from_row(r)) for r in rows]

    def add_model(self, name: str, spec: str) -> None:
        """Record a model's display name and spec (the first spec seen for a name is kept)."""
        with self._tx() as conn:
            conn.execute("INSERT OR IGNORE INTO models VALUES (?,?,?)", (name, spec, utc_now()))

    def models(self) -> dict[str, str]:
        """Display name -> spec of every recorded model."""
        return {row["name"]: row["spec"] for row in self._rows("SELECT name, spec FROM models ORDER BY name")}

    # -- answers -------------------------------------------------------------------------------

    def add_answers(self, answers: Iterable[Answer], *, run_id: int | None = None) -> int:
        """Store answers; an answer whose key is already stored is skipped. Returns how many were new."""
        rows = [
            (
                a.answer_key,
                a.model,
                a.model_spec,
                a.prompt_set,
                a.prompt_id,
                a.prompt_hash,
                a.text,
                canonical_json(a.settings),
                a.prompt_tokens,
                a.answer_tokens,
                a.latency_s,
                run_id,
                a.created_at,
            )
            for a in answers
        ]
        with self._tx() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO answers VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            return conn.total_changes - before

    def get_answer(self, answer_key: str) -> Answer | None:
        """The stored answer with this key, or None."""
        rows = self._rows("SELECT * FROM answers WHERE answer_key = ?", (answer_key,))
        return _answer_from_row(rows[0]) if rows else None

    def has_answers(self, answer_keys: Iterable[str]) -> set[str]:
        """The subset of ``answer_keys`` already stored."""
        keys = list(answer_keys)
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0] for r in self._rows(f"SELECT answer_key FROM answers WHERE answer_key IN ({marks})", chunk)
            )
        return found

    def answer_lengths(self, answer_keys: Iterable[str]) -> dict[str, int]:
        """Answer key -> length in characters of the stored answer text (keys not stored are left out)."""
        keys = sorted(set(answer_keys))
        lengths: dict[str, int] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._rows(f"SELECT answer_key, length(text) FROM answers WHERE answer_key IN ({marks})", chunk)
            lengths.update({row[0]: int(row[1]) for row in rows})
        return lengths

    def answered_prompt_sets(self, models: Sequence[str] | None = None) -> list[str]:
        """The prompt sets that have stored answers (of these models, when given), by name."""
        if models is None:
            return [str(r[0]) for r in self._rows("SELECT DISTINCT prompt_set FROM answers ORDER BY prompt_set")]
        marks = ",".join("?" * len(models))
        sql = f"SELECT DISTINCT prompt_set FROM answers WHERE model IN ({marks}) ORDER BY prompt_set"
        return [str(r[0]) for r in self._rows(sql, list(models))]

    def default_prompt_set(self, models: Sequence[str] | None = None) -> str:
        """The only prompt set with stored answers (of these models, when given).

        Args:
            models: restrict to the answers of these models (default: every model).

        Raises:
            ConfigError: no such answers, or answers of several sets (then ``--prompts`` must choose).
        """
        sets = self.answered_prompt_sets(models)
        if len(sets) == 1:
            return sets[0]
        whose = f" of {', '.join(models)}" if models is not None else ""
        if not sets:
            raise ConfigError(f"the store has no answers{whose}; run `qlora-eval generate` (or import answers) first")
        raise ConfigError(
            f"the store has answers{whose} for several prompt sets ({', '.join(sets)}); choose one with --prompts NAME"
        )

    def answers(self, *, models: Sequence[str] | None = None, prompt_set: str | None = None) -> list[Answer]:
        """Stored answers, optionally only of some models and one prompt set, oldest first."""
        sql = "SELECT * FROM answers WHERE 1=1"
        params: list[Any] = []
        if models is not None:
            sql += f" AND model IN ({','.join('?' * len(models))})"
            params.extend(models)
        if prompt_set is not None:
            sql += " AND prompt_set = ?"
            params.append(prompt_set)
        return [_answer_from_row(r) for r in self._rows(sql + " ORDER BY created_at, rowid", params)]

    # -- judgments -----------------------------------------------------------------------------

    def add_judgments(self, judgments: Iterable[Judgment], *, run_id: int | None = None) -> int:
        """Store judgments; one whose content key is already stored is skipped. Returns how many were new."""
        rows = [_judgment_row(j, run_id) for j in judgments]
        with self._tx() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO judgments VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            return conn.total_changes - before

    def judgment_verdict(self, judgment_key: str) -> Verdict | None:
        """The verdict stored under a content key (None: nothing stored under it)."""
        rows = self._rows("SELECT verdict FROM judgments WHERE judgment_key = ?", (judgment_key,))
        return Verdict(rows[0][0]) if rows else None

    def has_judgment(self, judgment_key: str) -> bool:
        """Whether a judgment with this content key is stored."""
        return bool(self._rows("SELECT 1 FROM judgments WHERE judgment_key = ?", (judgment_key,)))

    def judgments(
        self,
        *,
        judges: Sequence[str] | None = None,
        models: Sequence[str] | None = None,
        prompt_set: str | None = None,
    ) -> list[StoredJudgment]:
        """Stored judgments, filtered; ``models`` keeps battles whose two models are both in it."""
        sql, params = call_filter("judgments", judges=judges, models=models, prompt_set=prompt_set)
        rows = self._rows(sql, params)
        return [StoredJudgment(row["judgment_key"], _judgment_from_row(row), row["run_id"]) for row in rows]

    def battles(self, **filters: Any) -> list[Battle]:
        """The stored judgments as battles for the rating engine (INVALID included, to be counted)."""
        return [s.judgment.to_battle() for s in self.judgments(**filters)]

    def judges(self) -> list[str]:
        """Every judge with stored judgments, by name."""
        return [r[0] for r in self._rows("SELECT DISTINCT judge FROM judgments ORDER BY judge")]

    def add_judge_failure(
        self, judgment_key: str, judgment: Judgment, error: str, attempts: int, run_id: int | None = None
    ) -> None:
        """Record a judge call that failed after its retry budget (it is retried by the next run)."""
        if not error:
            raise ValueError("a judge failure needs a non-empty error message")
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO judge_failures (judgment_key, judge, prompt_set, prompt_id, model_a, model_b, error,"
                " attempts, run_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    judgment_key,
                    judgment.judge,
                    judgment.prompt_set,
                    judgment.prompt_id,
                    judgment.model_a,
                    judgment.model_b,
                    error,
                    attempts,
                    run_id,
                    utc_now(),
                ),
            )

    def judge_failures(self) -> list[JudgeFailure]:
        """Every recorded judge failure, oldest first."""
        rows = self._rows("SELECT * FROM judge_failures ORDER BY id")
        return [
            JudgeFailure(
                judgment_key=r["judgment_key"],
                judge=r["judge"],
                prompt_set=r["prompt_set"],
                prompt_id=r["prompt_id"],
                model_a=r["model_a"],
                model_b=r["model_b"],
                error=r["error"],
                attempts=int(r["attempts"]),
                run_id=r["run_id"],
                created_at=r["created_at"],
            )
            for r in rows
        ]


def _judgment_row(j: Judgment, run_id: int | None) -> tuple[Any, ...]:
    return (
        j.judgment_key,
        j.judge,
        j.model_a,
        j.model_b,
        j.prompt_set,
        j.prompt_id,
        j.verdict.value,
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


def _judgment_from_row(row: sqlite3.Row) -> Judgment:
    return Judgment(
        judge=row["judge"],
        model_a=row["model_a"],
        model_b=row["model_b"],
        prompt_set=row["prompt_set"],
        prompt_id=row["prompt_id"],
        verdict=Verdict(row["verdict"]),
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


def _answer_from_row(row: sqlite3.Row) -> Answer:
    return Answer(
        model=row["model"],
        model_spec=row["model_spec"],
        prompt_set=row["prompt_set"],
        prompt_id=row["prompt_id"],
        prompt_hash=row["prompt_hash"],
        text=row["text"],
        settings=json.loads(row["settings"]),
        prompt_tokens=row["prompt_tokens"],
        answer_tokens=row["answer_tokens"],
        latency_s=row["latency_s"],
        created_at=row["created_at"],
    )


def _prompt_from_row(row: sqlite3.Row) -> Prompt:
    return Prompt(
        prompt_set=row["prompt_set"],
        prompt_id=row["prompt_id"],
        turns=tuple(Message(Role(t["role"]), t["content"]) for t in json.loads(row["turns"])),
        category=row["category"],
        reference=row["reference"],
    )

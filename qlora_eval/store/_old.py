"""The SQLite store (L2): one file per workspace holding prompts, answers, judgments, raters and runs.

Rules the store enforces:

* WAL journal and a busy timeout, so a web server and a CLI can share one file.
* A versioned schema: ``MIGRATIONS`` is an ordered list; opening an older file applies the missing
  steps in one transaction, opening a newer file is refused.
* Content-hash keys: an answer or judgment with the same key is stored once (``INSERT OR IGNORE``),
  which is what makes re-runs free and imports idempotent.
* Answers and judgments are append-only (triggers refuse UPDATE and DELETE).
* Every public write runs in a transaction; ``transaction()`` groups several writes into one, so a
  failed import leaves the store exactly as it was.

The store is safe to share between threads of one process (one connection behind a lock).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qlora_eval.errors import StoreError
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

DEFAULT_DB = "qlora-eval.db"

_VERDICTS = ", ".join(f"'{v.value}'" for v in Verdict)
_ORDERS = ", ".join(f"'{o.value}'" for o in Order)

_V1 = f"""
CREATE TABLE prompts (
    prompt_set   TEXT NOT NULL,
    prompt_id    TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    set_version  TEXT NOT NULL,
    set_hash     TEXT NOT NULL,
    turns        TEXT NOT NULL,
    category     TEXT,
    reference    TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (prompt_set, prompt_id, content_hash)
);
CREATE TABLE models (
    name       TEXT PRIMARY KEY,
    spec       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE answers (
    answer_key    TEXT PRIMARY KEY,
    model         TEXT NOT NULL,
    model_spec    TEXT NOT NULL,
    prompt_set    TEXT NOT NULL,
    prompt_id     TEXT NOT NULL,
    prompt_hash   TEXT NOT NULL,
    text          TEXT NOT NULL,
    settings      TEXT NOT NULL,
    prompt_tokens INTEGER,
    answer_tokens INTEGER,
    latency_s     REAL,
    run_id        INTEGER,
    created_at    TEXT NOT NULL
);
CREATE INDEX answers_by_model ON answers (model, prompt_set, prompt_id);
CREATE TABLE judgments (
    judgment_key      TEXT PRIMARY KEY,
    judge             TEXT NOT NULL,
    model_a           TEXT NOT NULL,
    model_b           TEXT NOT NULL,
    prompt_set        TEXT NOT NULL,
    prompt_id         TEXT NOT NULL,
    verdict           TEXT NOT NULL CHECK (verdict IN ({_VERDICTS})),
    answer_order      TEXT NOT NULL CHECK (answer_order IN ({_ORDERS})),
    template_hash     TEXT NOT NULL,
    answer_a_key      TEXT,
    answer_b_key      TEXT,
    rationale         TEXT NOT NULL,
    settings          TEXT NOT NULL,
    cost_usd          REAL NOT NULL,
    latency_s         REAL,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    source            TEXT,
    run_id            INTEGER,
    created_at        TEXT NOT NULL,
    CHECK (model_a <> model_b)
);
CREATE INDEX judgments_by_judge ON judgments (judge, prompt_set);
CREATE TABLE judge_failures (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    judgment_key TEXT NOT NULL,
    judge        TEXT NOT NULL,
    prompt_set   TEXT NOT NULL,
    prompt_id    TEXT NOT NULL,
    model_a      TEXT NOT NULL,
    model_b      TEXT NOT NULL,
    error        TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    run_id       INTEGER,
    created_at   TEXT NOT NULL
);
CREATE TABLE raters (
    name       TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    is_admin   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE runs (
    run_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    command     TEXT NOT NULL,
    config      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL,
    summary     TEXT
);
CREATE TABLE results (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    payload    TEXT NOT NULL,
    run_id     INTEGER,
    created_at TEXT NOT NULL
);
CREATE TRIGGER judgments_append_only_update BEFORE UPDATE ON judgments
BEGIN SELECT RAISE(ABORT, 'judgments are append-only'); END;
CREATE TRIGGER judgments_append_only_delete BEFORE DELETE ON judgments
BEGIN SELECT RAISE(ABORT, 'judgments are append-only'); END;
CREATE TRIGGER answers_append_only_update BEFORE UPDATE ON answers
BEGIN SELECT RAISE(ABORT, 'answers are append-only'); END;
CREATE TRIGGER answers_append_only_delete BEFORE DELETE ON answers
BEGIN SELECT RAISE(ABORT, 'answers are append-only'); END;
"""

# Version 2: the human-rating web form (qlora_eval/web/). A task is one (prompt, model pair, answer pair) with
# model_x < model_y alphabetically; an assignment gives a task to one rater (is_repeat = 1: the self-consistency
# repeat, shown with sides swapped); a vote answers one assignment. Only first votes become judgments (judge
# ``human:<rater>``); repeat votes live in web_votes alone so rankings never count them.
_V2_SQL = """
CREATE TABLE web_tasks (
    task_id      TEXT PRIMARY KEY,
    prompt_set   TEXT NOT NULL,
    prompt_id    TEXT NOT NULL,
    model_x      TEXT NOT NULL,
    model_y      TEXT NOT NULL,
    answer_x_key TEXT NOT NULL,
    answer_y_key TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    CHECK (model_x < model_y)
);
CREATE TABLE web_assignments (
    assignment_id TEXT PRIMARY KEY,
    rater         TEXT NOT NULL REFERENCES raters (name),
    task_id       TEXT NOT NULL REFERENCES web_tasks (task_id),
    is_repeat     INTEGER NOT NULL CHECK (is_repeat IN (0, 1)),
    left_model    TEXT NOT NULL,
    assigned_at   TEXT NOT NULL,
    skipped_at    TEXT,
    UNIQUE (rater, task_id, is_repeat)
);
CREATE INDEX web_assignments_by_task ON web_assignments (task_id);
CREATE TABLE web_votes (
    assignment_id TEXT PRIMARY KEY REFERENCES web_assignments (assignment_id),
    rater         TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    is_repeat     INTEGER NOT NULL CHECK (is_repeat IN (0, 1)),
    choice        TEXT NOT NULL CHECK (choice IN ('left', 'right', 'tie', 'both_bad')),
    verdict_xy    TEXT NOT NULL CHECK (verdict_xy IN ('A', 'B', 'tie', 'both_bad')),
    judgment_key  TEXT,
    rationale     TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (rater, task_id, is_repeat),
    CHECK ((is_repeat = 0) = (judgment_key IS NOT NULL))
);
CREATE TRIGGER web_votes_append_only_update BEFORE UPDATE ON web_votes
BEGIN SELECT RAISE(ABORT, 'votes are append-only'); END;
CREATE TRIGGER web_votes_append_only_delete BEFORE DELETE ON web_votes
BEGIN SELECT RAISE(ABORT, 'votes are append-only'); END;
"""

# Ordered schema steps: (version reached, SQL script). Append new steps; never edit old ones.
MIGRATIONS: list[tuple[int, str]] = [(1, _V1), (2, _V2_SQL)]


def latest_version() -> int:
    """The schema version this code writes."""
    return MIGRATIONS[-1][0]


@dataclass(frozen=True)
class StoredJudgment:
    """A judgment as read back, with its key and run."""

    key: str
    judgment: Judgment
    run_id: int | None


class Store:
    """A handle on one SQLite store file.

    Use as a context manager, or call ``close()``::

        with Store("qlora-eval.db") as store:
            new = store.add_judgments(judgments)
    """

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder; --db needs a file path such as {self.path / DEFAULT_DB}")
        if not self.path.parent.exists():
            raise StoreError(f"the folder of --db {self.path} does not exist; create it first")
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable SQLite store: {exc}") from exc
        self._lock = threading.RLock()
        self._depth = 0
        self._migrate()

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Group writes: all of them land, or (on any exception) none does. Nests."""
        with self._lock:
            if self._depth == 0:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self._conn
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one read query and return all rows (for engines with tables of their own)."""
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    # -- schema --------------------------------------------------------------------------------

    def schema_version(self) -> int:
        with self._lock:
            has_table = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'"
            ).fetchone()
            if not has_table:
                return 0
            row = self._conn.execute("SELECT version FROM schema_version").fetchone()
            return int(row[0]) if row else 0

    def _migrate(self) -> None:
        current = self.schema_version()
        if current > latest_version():
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this qlora-eval understands "
                f"({latest_version()}); upgrade qlora-eval"
            )
        if current == latest_version():
            return
        try:
            with self.transaction() as conn:
                if current == 0:
                    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                    conn.execute("INSERT INTO schema_version VALUES (0)")
                for version, script in MIGRATIONS:
                    if version <= current:
                        continue
                    for statement in _split_sql(script):
                        conn.execute(statement)
                    conn.execute("UPDATE schema_version SET version = ?", (version,))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot migrate {self.path} from schema {current}: {exc}") from exc

    # -- prompts and models --------------------------------------------------------------------

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
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO prompts VALUES (?,?,?,?,?,?,?,?,?)", rows)
            return conn.total_changes - before

    def prompts(self, prompt_set: str) -> list[Prompt]:
        """The stored prompts of a set (latest content per id), in id order."""
        rows = self.execute("SELECT * FROM prompts WHERE prompt_set = ? ORDER BY prompt_id, created_at", (prompt_set,))
        latest: dict[str, Prompt] = {}
        for row in rows:
            latest[row["prompt_id"]] = Prompt(
                prompt_set=row["prompt_set"],
                prompt_id=row["prompt_id"],
                turns=tuple(Message(Role(t["role"]), t["content"]) for t in json.loads(row["turns"])),
                category=row["category"],
                reference=row["reference"],
            )
        return list(latest.values())

    def add_model(self, name: str, spec: str) -> None:
        """Record a model's display name and spec (the first spec seen for a name is kept)."""
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO models VALUES (?,?,?)", (name, spec, utc_now()))

    def models(self) -> dict[str, str]:
        """Display name -> spec of every recorded model."""
        return {row["name"]: row["spec"] for row in self.execute("SELECT name, spec FROM models ORDER BY name")}

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
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO answers VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            return conn.total_changes - before

    def get_answer(self, answer_key: str) -> Answer | None:
        rows = self.execute("SELECT * FROM answers WHERE answer_key = ?", (answer_key,))
        return _answer_from_row(rows[0]) if rows else None

    def has_answers(self, answer_keys: Iterable[str]) -> set[str]:
        """The subset of ``answer_keys`` already stored."""
        keys = list(answer_keys)
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0] for r in self.execute(f"SELECT answer_key FROM answers WHERE answer_key IN ({marks})", chunk)
            )
        return found

    def answer_lengths(self, answer_keys: Iterable[str]) -> dict[str, int]:
        """Answer key -> length in characters of the stored answer text (keys not stored are left out)."""
        keys = sorted(set(answer_keys))
        lengths: dict[str, int] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.execute(f"SELECT answer_key, length(text) FROM answers WHERE answer_key IN ({marks})", chunk)
            lengths.update({row[0]: int(row[1]) for row in rows})
        return lengths

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
        return [_answer_from_row(r) for r in self.execute(sql + " ORDER BY created_at, rowid", params)]

    # -- judgments -----------------------------------------------------------------------------

    def add_judgments(self, judgments: Iterable[Judgment], *, run_id: int | None = None) -> int:
        """Store judgments; one whose content key is already stored is skipped. Returns how many were new."""
        rows = [_judgment_row(j, run_id) for j in judgments]
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO judgments VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            return conn.total_changes - before

    def has_judgment(self, judgment_key: str) -> bool:
        return bool(self.execute("SELECT 1 FROM judgments WHERE judgment_key = ?", (judgment_key,)))

    def judgments(
        self,
        *,
        judges: Sequence[str] | None = None,
        models: Sequence[str] | None = None,
        prompt_set: str | None = None,
    ) -> list[StoredJudgment]:
        """Stored judgments, filtered; ``models`` keeps battles whose two models are both in it."""
        sql = "SELECT * FROM judgments WHERE 1=1"
        params: list[Any] = []
        if judges is not None:
            sql += f" AND judge IN ({','.join('?' * len(judges))})"
            params.extend(judges)
        if models is not None:
            marks = ",".join("?" * len(models))
            sql += f" AND model_a IN ({marks}) AND model_b IN ({marks})"
            params.extend(models)
            params.extend(models)
        if prompt_set is not None:
            sql += " AND prompt_set = ?"
            params.append(prompt_set)
        rows = self.execute(sql + " ORDER BY created_at, rowid", params)
        return [StoredJudgment(row["judgment_key"], _judgment_from_row(row), row["run_id"]) for row in rows]

    def battles(self, **filters: Any) -> list[Battle]:
        """The stored judgments as battles for the rating engine (INVALID included, to be counted)."""
        return [s.judgment.to_battle() for s in self.judgments(**filters)]

    def judges(self) -> list[str]:
        return [r[0] for r in self.execute("SELECT DISTINCT judge FROM judgments ORDER BY judge")]

    def add_judge_failure(
        self, judgment_key: str, judgment: Judgment, error: str, attempts: int, run_id: int | None = None
    ) -> None:
        """Record a judge call that failed after its retry budget (it is retried by the next run)."""
        if not error:
            raise ValueError("a judge failure needs a non-empty error message")
        with self.transaction() as conn:
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

    # -- runs and results ----------------------------------------------------------------------

    def start_run(self, command: str, config: dict[str, Any]) -> int:
        """Record that a command started; returns its run id."""
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO runs (command, config, started_at, status) VALUES (?,?,?,?)",
                (command, canonical_json(config), utc_now(), "running"),
            )
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any] | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE run_id = ?",
                (utc_now(), status, canonical_json(summary or {}), run_id),
            )

    def add_result(self, kind: str, subject: str, payload: dict[str, Any], *, run_id: int | None = None) -> None:
        """Store a benchmark result (MMLU, memory, throughput) as JSON."""
        with self.transaction() as conn:
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
        return [(r[0], r[1], json.loads(r[2]), r[3]) for r in self.execute(sql + " ORDER BY id", params)]

    def counts(self) -> dict[str, int]:
        """Row counts per table (for status output and tests)."""
        tables = ["prompts", "models", "answers", "judgments", "judge_failures", "raters", "runs", "results"]
        return {t: int(self.execute(f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables}


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (triggers keep their inner ';')."""
    statements: list[str] = []
    buffer: list[str] = []
    for line in script.strip().splitlines():
        buffer.append(line)
        joined = "\n".join(buffer).strip()
        if joined.endswith(";") and sqlite3.complete_statement(joined):
            statements.append(joined)
            buffer = []
    if "\n".join(buffer).strip():
        raise StoreError("a migration script ends with an incomplete statement")
    return statements


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

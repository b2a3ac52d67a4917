"""The store's schema: ordered, versioned migration steps (append new steps; never edit old ones).

Answers, judgments and votes are append-only: triggers refuse UPDATE and DELETE on them.
"""

from __future__ import annotations

import sqlite3

from qlora_eval.errors import StoreError
from qlora_eval.types import Order, Verdict

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

# Version 3 (issue 12): external answer ids (the QLoRA files' ``answer_id``) and relative-protocol judgments
# (two 1-10 scores per call) in a table of their own, so pairwise rankings never read score pairs.
_V3_SQL = f"""
CREATE TABLE answer_ids (
    external_id TEXT NOT NULL,
    answer_key  TEXT NOT NULL,
    source      TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (external_id, answer_key)
);
CREATE TABLE relative_judgments (
    judgment_key      TEXT PRIMARY KEY,
    judge             TEXT NOT NULL,
    model_a           TEXT NOT NULL,
    model_b           TEXT NOT NULL,
    prompt_set        TEXT NOT NULL,
    prompt_id         TEXT NOT NULL,
    score_a           REAL,
    score_b           REAL,
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
    CHECK (model_a <> model_b),
    CHECK ((score_a IS NULL) = (score_b IS NULL))
);
CREATE INDEX relative_judgments_by_judge ON relative_judgments (judge, prompt_set);
CREATE TRIGGER relative_judgments_append_only_update BEFORE UPDATE ON relative_judgments
BEGIN SELECT RAISE(ABORT, 'judgments are append-only'); END;
CREATE TRIGGER relative_judgments_append_only_delete BEFORE DELETE ON relative_judgments
BEGIN SELECT RAISE(ABORT, 'judgments are append-only'); END;
"""

# Ordered schema steps: (version reached, SQL script). Append new steps; never edit old ones.
# Batch API submissions (issue 16): which judgment keys are in flight, in which batch (store/batches.py).
_V4_SQL = """
CREATE TABLE batch_submissions (
    submission_id TEXT PRIMARY KEY,
    judge         TEXT NOT NULL,
    endpoint      TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('intent', 'uploaded', 'submitted', 'collected', 'abandoned')),
    file_id       TEXT,
    batch_id      TEXT UNIQUE,
    batch_status  TEXT,
    note          TEXT,
    summary       TEXT,
    run_id        INTEGER,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE TABLE batch_items (
    submission_id TEXT NOT NULL REFERENCES batch_submissions (submission_id),
    judgment_key  TEXT NOT NULL,
    request       TEXT NOT NULL,
    PRIMARY KEY (submission_id, judgment_key)
);
CREATE INDEX batch_items_by_key ON batch_items (judgment_key);
"""

MIGRATIONS: list[tuple[int, str]] = [(1, _V1), (2, _V2_SQL), (3, _V3_SQL), (4, _V4_SQL)]


def latest_version() -> int:
    """The schema version this code writes."""
    return MIGRATIONS[-1][0]


def split_sql(script: str) -> list[str]:
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


def current_version(conn: sqlite3.Connection, *, source: str = "the store") -> int:
    """The schema version recorded in an open store file (0 for a new, empty file).

    Raises:
        StoreError: the ``schema_version`` table does not hold exactly one whole number (the file was
            changed by another program).
    """
    has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
    if not has_table:
        return 0
    values = [row[0] for row in conn.execute("SELECT version FROM schema_version").fetchall()]
    # bool is an int subclass, and SQLite hands back text or reals unchanged when a program stored them.
    if len(values) != 1 or type(values[0]) is not int or values[0] < 1:
        raise StoreError(
            f"{source}: its schema_version table holds {values!r}, not one schema version (a whole number from 1 "
            f"to {latest_version()}); the file was changed by another program. Restore it from a backup, or "
            "use a new --db file"
        )
    return values[0]


def apply_migrations(conn: sqlite3.Connection, current: int) -> None:
    """Run every step after ``current`` (the caller holds the transaction, so all steps land or none)."""
    if current == 0:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (0)")
    for version, script in MIGRATIONS:
        if version <= current:
            continue
        for statement in split_sql(script):
            conn.execute(statement)
        conn.execute("UPDATE schema_version SET version = ?", (version,))

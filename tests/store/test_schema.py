"""Versioned migrations: missing steps are applied, newer files refused."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from qlora_eval.errors import StoreError
from qlora_eval.store import Store, latest_version, schema
from tests.store.helpers import judgment


def test_migration_applies_missing_steps_and_keeps_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.db"
    with Store(path) as s:
        s.add_judgments([judgment()])
    v2 = (latest_version() + 1, "CREATE TABLE extra (x INTEGER);")
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, v2])
    with Store(path) as s:
        assert s.schema_version() == v2[0]
        assert s.counts()["judgments"] == 1
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM extra").fetchone()[0] == 0


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 999")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


V1_SQL = Path(__file__).parent / "fixtures" / "schema_v1.sql"


def _write_v1_file(path: Path) -> None:
    """A store as qlora-eval's first version wrote it: the v1 tables, version 1, some rows; no qlora_eval code."""
    from qlora_eval.store.schema import split_sql

    script = "\n".join(line for line in V1_SQL.read_text().splitlines() if not line.startswith("--"))
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        with conn:
            for statement in split_sql(script):
                conn.execute(statement)
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO schema_version VALUES (1)")
            turns = json.dumps([{"role": "user", "content": "Why is the sky blue?"}])
            conn.execute(
                "INSERT INTO prompts VALUES ('vicuna', '1', 'h1', '1', 'sethash', ?, 'generic', NULL, '2024-01-01')",
                (turns,),
            )
            conn.execute("INSERT INTO models VALUES ('m1', 'hf:m1', '2024-01-01')")
            conn.execute(
                "INSERT INTO judgments VALUES ('k1', 'gpt-4', 'm1', 'm2', 'vicuna', '1', 'A', 'forward', 't1', NULL, "
                "NULL, 'because', ?, 0.01, 1.5, 100, 20, 'old-import', NULL, '2024-01-01')",
                (json.dumps({"temperature": 0.0}),),
            )
            conn.execute("INSERT INTO raters VALUES ('alice', 'hash-a', 0, '2024-01-01', NULL)")


def test_a_real_v1_file_opens_migrated_with_its_rows(tmp_path: Path) -> None:
    from qlora_eval.human.raters import add_rater
    from qlora_eval.types import Verdict

    path = tmp_path / "v1.db"
    _write_v1_file(path)
    with Store(path) as s:
        assert s.schema_version() == latest_version()
        (stored,) = s.judgments()
        j = stored.judgment
        assert (j.judge, j.model_a, j.model_b, j.verdict, j.rationale) == ("gpt-4", "m1", "m2", Verdict.A, "because")
        assert j.settings == {"temperature": 0.0} and j.cost_usd == 0.01 and j.source == "old-import"
        assert [p.question for p in s.prompts("vicuna")] == ["Why is the sky blue?"]
        assert s.models() == {"m1": "hf:m1"}
        assert [r.name for r in s.raters()] == ["alice"]
        add_rater(s, "bob")  # the later steps' tables and the old ones work together
        assert s.add_judgments([judgment("2")]) == 1
    with closing(sqlite3.connect(path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"web_tasks", "web_votes", "answer_ids", "relative_judgments", "batch_submissions"} <= tables
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(latest_version(),)]
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM judgments")  # the v1 triggers survived the migration

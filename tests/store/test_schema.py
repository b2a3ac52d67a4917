"""Versioned migrations: missing steps are applied, newer files refused."""

from __future__ import annotations

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

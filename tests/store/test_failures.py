"""Raw SQLite failures reach the user as a StoreError that says what to do (exit 2), never as a traceback.

Each case failed before issue 14 with a raw ``sqlite3`` error (or a ValueError) and exit 1.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from qlora_eval.cli.main import main
from qlora_eval.errors import StoreError
from qlora_eval.human.raters import add_rater
from qlora_eval.store import Store
from tests.store.helpers import judgment


def _store_with_raters(path: Path) -> None:
    with Store(path) as s:
        s.add_judgments([judgment(str(i)) for i in range(50)])
        for i in range(5):
            add_rater(s, f"rater{i}")
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file


def _damage_table(path: Path, table: str) -> None:
    """Overwrite the root page of ``table`` with garbage; the schema (page 1) stays intact."""
    with closing(sqlite3.connect(path)) as conn:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    assert root > 1
    with path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)


def test_damaged_data_pages_with_an_intact_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.db"
    _store_with_raters(path)
    _damage_table(path, "raters")
    with Store(path) as s:  # the schema is readable, so the file opens
        with pytest.raises(StoreError, match=r"damaged.*backup.*\.recover"):
            s.raters()
        assert len(s.judgments()) == 50  # other tables still read
    assert main(["raters", "list", "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert "damaged" in err and str(path) in err and "Traceback" not in err


@contextmanager
def _held_write_lock(path: Path) -> Iterator[None]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_a_store_locked_too_long_waits_visibly_then_fails(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    with Store(path, timeout_s=1.0) as s, _held_write_lock(path):
        assert s.counts()["judgments"] == 0  # WAL: readers are not blocked
        with caplog.at_level(logging.WARNING), pytest.raises(StoreError, match=r"locked.*Wait until it finishes"):
            s.add_judgments([judgment()])
        said = [r.getMessage() for r in caplog.records]
        assert any("locked by another process" in m and "waiting" in m for m in said), said
    with Store(path) as s:  # once the other writer is gone, writing works and nothing was half-written
        assert s.counts()["judgments"] == 0
        assert s.add_judgments([judgment()]) == 1


def test_a_lock_released_while_waiting_lets_the_write_through(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "s.db"
    Store(path).close()
    with Store(path, timeout_s=10.0) as s:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
        threading.Timer(0.5, lambda: (conn.execute("COMMIT"), conn.close())).start()
        assert s.add_judgments([judgment()]) == 1


@contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """The file read-only: ``chattr +i`` (immutable, also for root) where allowed, else mode 0444."""
    mode = path.stat().st_mode
    path.chmod(0o444)
    immutable = os.geteuid() == 0 and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
    try:
        if os.geteuid() == 0 and not immutable:
            pytest.skip("running as root on a file system without chattr +i: a file cannot be made read-only")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(mode)


def test_a_read_only_or_immutable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.db"
    _store_with_raters(path)
    with _read_only(path):
        with Store(path) as s:
            assert len(s.raters()) == 5  # reading still works
            with pytest.raises(StoreError, match=r"read-only.*--db"):
                s.add_judgments([judgment("new")])
        assert main(["raters", "add", "zoe", "--db", str(path)]) == 2
        err = capsys.readouterr().err
        assert "read-only" in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["'three'", "2.5", "NULL"])
def test_a_non_integer_schema_version(tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE v_copy AS SELECT * FROM schema_version")  # keep NOT NULL out of the way
        conn.execute("DROP TABLE schema_version")
        conn.execute("ALTER TABLE v_copy RENAME TO schema_version")
        conn.execute(f"UPDATE schema_version SET version = {value}")
    with pytest.raises(StoreError, match=r"schema_version table holds .* changed by another program"):
        Store(path)
    assert main(["raters", "list", "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert "schema_version" in err and "Traceback" not in err

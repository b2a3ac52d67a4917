"""The store's connection: one SQLite file opened in WAL mode, migrated on open, shared behind a lock.

Rules:

* WAL journal and a busy timeout, so a web server and a CLI can share one file.
* Opening an older file applies the missing migration steps in one transaction; a newer file is refused.
* Every public write runs in a transaction; ``atomic()`` groups several typed calls into one, so a failed
  import (or a vote whose judgment cannot be stored) leaves the store exactly as it was.

The connection never leaves the ``store`` package: the record modules reach it through ``_tx`` and
``_rows``; callers use typed methods.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from qlora_eval.errors import StoreError
from qlora_eval.store import schema

DEFAULT_DB = "qlora-eval.db"


class StoreCore:
    """Opening, closing, locking and transactions of one store file (the typed methods live in mixins)."""

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
        # One connection shared by threads: the re-entrant lock is held for a whole transaction, so a
        # thread's grouped calls (atomic()) never interleave with another thread's.
        self._lock = threading.RLock()
        self._depth = 0
        self._migrate()

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file (further calls fail)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Group typed calls: all their writes land, or (on any exception) none does. Nests.

        The group runs as one ``BEGIN IMMEDIATE`` transaction, so a read-decide-write inside it is not
        interleaved with another writer (thread or process).
        """
        with self._tx():
            yield

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
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

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one read query and return all rows."""
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    # -- schema --------------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The schema version of the open file."""
        with self._lock:
            return schema.current_version(self._conn)

    def journal_mode(self) -> str:
        """SQLite's journal mode of the open file (``wal`` for every store)."""
        return str(self._rows("PRAGMA journal_mode")[0][0])

    def _migrate(self) -> None:
        current = self.schema_version()
        latest = schema.latest_version()
        if current > latest:
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this qlora-eval understands "
                f"({latest}); upgrade qlora-eval"
            )
        if current == latest:
            return
        try:
            with self._tx() as conn:
                schema.apply_migrations(conn, current)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot migrate {self.path} from schema {current}: {exc}") from exc

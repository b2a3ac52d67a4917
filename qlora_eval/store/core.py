"""The store's connection: one SQLite file opened in WAL mode, migrated on open, shared behind a lock.

Rules:

* WAL journal and a busy timeout, so a web server and a CLI can share one file.
* Opening an older file applies the missing migration steps in one ``BEGIN IMMEDIATE`` transaction that
  re-reads the version inside the write lock, so several processes opening a new file at once migrate it
  exactly once; a newer file is refused.
* A write that finds the file locked waits a moment, then logs that it is waiting (a visible WARNING) and
  waits up to ``timeout_s`` in all before failing with a ``StoreError``.
* Raw SQLite failures (damaged pages, a read-only file, a full disk...) become ``StoreError``s that say what
  to do (``failures.py``); integrity errors stay as they are.
* Every public write runs in a transaction; ``atomic()`` groups several typed calls into one, so a failed
  import (or a vote whose judgment cannot be stored) leaves the store exactly as it was.

The connection never leaves the ``store`` package: the record modules reach it through ``_tx`` and
``_rows``; callers use typed methods.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

from qlora_eval.errors import StoreError
from qlora_eval.store import failures, schema

DEFAULT_DB = "qlora-eval.db"
FIRST_WAIT_S = 2.0
"""How long a blocked call waits silently before it logs that the store is locked and keeps waiting."""

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class StoreCore:
    """Opening, closing, locking and transactions of one store file (the typed methods live in mixins)."""

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0) -> None:
        """Open (creating if missing) and migrate the store file at ``path``.

        Args:
            path: the store file.
            timeout_s: how long a call waits for another process's write lock before it fails.

        Raises:
            StoreError: the path is a folder or in a missing folder, the file is not a usable store (damaged,
                newer schema, unreadable), or it stayed locked for ``timeout_s``.
        """
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._first_wait_s = min(FIRST_WAIT_S, timeout_s / 2)
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder; --db needs a file path such as {self.path / DEFAULT_DB}")
        if not self.path.parent.exists():
            raise StoreError(f"the folder of --db {self.path} does not exist; create it first")
        # One connection shared by threads: the re-entrant lock is held for a whole transaction, so a
        # thread's grouped calls (atomic()) never interleave with another thread's.
        self._lock = threading.RLock()
        self._depth = 0
        try:
            with self._translated("opening it"):
                self._conn = sqlite3.connect(
                    str(self.path), timeout=self._first_wait_s, isolation_level=None, check_same_thread=False
                )
                self._conn.row_factory = sqlite3.Row
                self._waiting(lambda: self._conn.execute("PRAGMA journal_mode=WAL").fetchall())
                self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except BaseException:
            if hasattr(self, "_conn"):
                self._conn.close()
            raise

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
        with self._lock, self._translated("writing to it"):
            if self._depth == 0:
                self._waiting(lambda: self._conn.execute("BEGIN IMMEDIATE"))
            self._depth += 1
            try:
                yield self._conn
            except BaseException:
                self._depth -= 1
                # SQLite rolls back by itself after some failures (a full disk, an I/O error).
                if self._depth == 0 and self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                try:
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one read query and return all rows."""
        with self._lock, self._translated("reading it"):
            return self._waiting(lambda: list(self._conn.execute(sql, params).fetchall()))

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        """Raw SQLite failures inside the block leave it as a ``StoreError`` that says what to do."""
        try:
            yield
        except sqlite3.Error as exc:
            if not failures.translatable(exc):
                raise
            raise failures.store_error(self.path, exc, timeout_s=self.timeout_s, doing=doing) from exc

    def _waiting(self, call: Callable[[], _T]) -> _T:
        """Run ``call`` (a statement that takes no effect when it finds the file locked); if another process
        holds the lock for longer than the first wait, say so and keep waiting up to ``timeout_s`` in all."""
        try:
            return call()
        except sqlite3.OperationalError as exc:
            rest = self.timeout_s - self._first_wait_s
            if not failures.is_busy(exc) or rest <= 0:
                raise
        _log.warning(
            "the store %s is locked by another process writing to it; waiting up to %g s more", self.path, rest
        )
        self._conn.execute(f"PRAGMA busy_timeout={int(rest * 1000)}")
        try:
            return call()
        finally:
            self._conn.execute(f"PRAGMA busy_timeout={int(self._first_wait_s * 1000)}")

    # -- schema --------------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The schema version of the open file."""
        with self._lock, self._translated("reading its schema version"):
            return schema.current_version(self._conn, source=str(self.path))

    def journal_mode(self) -> str:
        """SQLite's journal mode of the open file (``wal`` for every store)."""
        return str(self._rows("PRAGMA journal_mode")[0][0])

    def _migrate(self) -> None:
        if self._check_version(self.schema_version()):
            return
        with self._tx() as conn:
            # Re-read inside the write lock: another process may have migrated the file since the read above.
            current = schema.current_version(conn, source=str(self.path))
            if self._check_version(current):
                return
            try:
                schema.apply_migrations(conn, current)
            except sqlite3.Error as exc:
                if not failures.translatable(exc) or failures.describe(self.path, exc, timeout_s=self.timeout_s):
                    raise
                raise StoreError(
                    f"cannot migrate {self.path} from schema {current} to {schema.latest_version()}: {exc}; "
                    "restore the file from a backup or use a new --db file"
                ) from exc

    def _check_version(self, current: int) -> bool:
        """True when the file is up to date; a newer file is refused."""
        latest = schema.latest_version()
        if current > latest:
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this qlora-eval understands "
                f"({latest}); upgrade qlora-eval"
            )
        return current == latest


def call_filter(
    table: str,
    *,
    judges: Sequence[str] | None,
    models: Sequence[str] | None,
    prompt_set: str | None,
) -> tuple[str, list[Any]]:
    """``SELECT * FROM table`` restricted to judges, to calls whose two models are both in ``models``, and to a
    prompt set, oldest first (``None``: no restriction). Shared by the judgment and relative-judgment tables."""
    sql = f"SELECT * FROM {table} WHERE 1=1"
    params: list[Any] = []
    if judges is not None:
        sql += f" AND judge IN ({','.join('?' * len(judges))})"
        params.extend(judges)
    if models is not None:
        marks = ",".join("?" * len(models))
        sql += f" AND model_a IN ({marks}) AND model_b IN ({marks})"
        params.extend([*models, *models])
    if prompt_set is not None:
        sql += " AND prompt_set = ?"
        params.append(prompt_set)
    return sql + " ORDER BY created_at, rowid", params

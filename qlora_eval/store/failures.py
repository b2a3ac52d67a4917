"""What a raw ``sqlite3`` error means for the user, as a ``StoreError`` that says what to do.

SQLite reports a damaged page, a lock held too long, a read-only file or a full disk as
``sqlite3.OperationalError``/``DatabaseError`` with a terse message; the CLI would show them as tracebacks.
``store_error`` turns them into a sentence naming the file and the remedy, keyed on SQLite's (extended)
error name, so a message change between SQLite versions does not matter.

Integrity errors (constraint or append-only trigger failures) are not translated: they mean a caller broke
an invariant, and the store's callers handle or report them themselves.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from qlora_eval.errors import StoreError


def error_name(exc: sqlite3.Error) -> str:
    """SQLite's error name (``SQLITE_BUSY``, ``SQLITE_CORRUPT_INDEX``...); empty when SQLite gave none."""
    return str(getattr(exc, "sqlite_errorname", "") or "")


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says another connection holds the lock (SQLITE_BUSY / SQLITE_LOCKED)."""
    name = error_name(exc)
    if name:
        return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
    return "locked" in str(exc)


def describe(path: Path, exc: sqlite3.Error, *, timeout_s: float) -> str | None:
    """The user-facing sentence for a known kind of failure, or None for an unexpected one."""
    name = error_name(exc)
    if is_busy(exc):
        return (
            f"the store {path} is locked: another process has been writing to it for more than {timeout_s:g} s "
            "(a running judge, import or serve?). Wait until it finishes, or stop it, then run the command again"
        )
    if name.startswith("SQLITE_READONLY") or "readonly database" in str(exc):
        return (
            f"the store {path} is read-only (file permissions, an immutable attribute or a read-only disk), so "
            "qlora-eval cannot write to it. Make it writable (chmod u+w, chattr -i), or copy it to a writable "
            "folder and pass that file as --db"
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in str(exc):
        return (
            f"the store {path} is damaged ({exc}). Restore it from a backup; "
            f"`sqlite3 {path} .recover | sqlite3 recovered.db` saves what is still readable into a new file"
        )
    if name.startswith("SQLITE_FULL"):
        return f"the disk holding the store {path} is full ({exc}); free some space and run the command again"
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return (
            f"cannot open the store {path} ({exc}): the file and its folder must be readable and writable "
            "(SQLite also writes the -wal and -shm files next to it)"
        )
    if name.startswith("SQLITE_IOERR"):
        return (
            f"reading or writing the store {path} failed at the disk level ({exc}); check the disk (removed? "
            "full? a network file system without locking?) and run the command again"
        )
    return None


def store_error(path: Path, exc: sqlite3.Error, *, timeout_s: float, doing: str = "") -> StoreError:
    """A ``StoreError`` for ``exc``: the known sentence, or what failed while ``doing`` what."""
    known = describe(path, exc, timeout_s=timeout_s)
    if known is not None:
        return StoreError(known)
    during = f" while {doing}" if doing else ""
    return StoreError(
        f"the store {path} failed{during}: {exc}. Its tables may have been changed by another program; "
        "restore it from a backup or use a new --db file"
    )


def translatable(exc: BaseException) -> bool:
    """Whether ``exc`` is a raw SQLite failure to show as a ``StoreError``.

    Integrity errors (a broken constraint) and programming errors (a closed connection, a bad parameter) are
    bugs of the caller, not states of the file, and stay as they are.
    """
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError)
    )

"""Raters and tokens of the human-rating form (no web framework needed: the CLI uses this too).

A token is ``secrets.token_urlsafe(32)``; the store keeps only its sha256 (``raters.token_hash``), so a
token is shown once, when it is made. The admin is the row named ``admin`` with ``is_admin = 1``; its
token can be replaced (``rotate_admin``), never shown again.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from qlora_eval.errors import InputError
from qlora_eval.store import Store
from qlora_eval.types import utc_now

ADMIN_NAME = "admin"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Rater:
    """A rater as stored (never with the plain token)."""

    name: str
    is_admin: bool
    created_at: str
    revoked_at: str | None

    @property
    def judge(self) -> str:
        """The judge id this rater's votes are stored under."""
        return f"human:{self.name}"


def hash_token(token: str) -> str:
    """sha256 hex of a token: what the store keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def check_rater_name(name: str) -> str:
    """Validate a rater name (it becomes part of the judge id ``human:<name>``).

    Raises:
        InputError: the name is not 1-64 of letters, digits, ``_ . -`` (starting with a letter or digit),
            or is the reserved name ``admin``.
    """
    if not _NAME_RE.fullmatch(name):
        raise InputError(
            f"rater name {name!r} is not allowed: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    if name == ADMIN_NAME:
        raise InputError(f"the rater name {ADMIN_NAME!r} is reserved for the admin token; choose another name")
    return name


def add_rater(store: Store, name: str) -> str:
    """Create a rater; returns their plain token (shown once, stored hashed).

    Raises:
        InputError: bad name, or a rater with this name exists (revoked or not).
    """
    check_rater_name(name)
    token = new_token()
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM raters WHERE name = ?", (name,)).fetchone():
            raise InputError(
                f"a rater named {name!r} already exists; choose another name, or give them a new token with "
                f"`qlora-eval raters token {name}`"
            )
        conn.execute(
            "INSERT INTO raters (name, token_hash, is_admin, created_at) VALUES (?,?,0,?)",
            (name, hash_token(token), utc_now()),
        )
    return token


def new_rater_token(store: Store, name: str) -> str:
    """Replace an active rater's token (the old one stops working); returns the new plain token.

    Raises:
        InputError: no active rater has this name.
    """
    token = new_token()
    with store.transaction() as conn:
        cur = conn.execute(
            "UPDATE raters SET token_hash = ? WHERE name = ? AND is_admin = 0 AND revoked_at IS NULL",
            (hash_token(token), name),
        )
        if cur.rowcount != 1:
            raise InputError(f"no active rater named {name!r}; see `qlora-eval raters list`")
    return token


def revoke_rater(store: Store, name: str) -> None:
    """Revoke a rater: their token gets 401 from now on; their votes stay.

    Raises:
        InputError: no active rater has this name.
    """
    with store.transaction() as conn:
        cur = conn.execute(
            "UPDATE raters SET revoked_at = ? WHERE name = ? AND is_admin = 0 AND revoked_at IS NULL",
            (utc_now(), name),
        )
        if cur.rowcount != 1:
            raise InputError(f"no active rater named {name!r}; see `qlora-eval raters list`")


def list_raters(store: Store) -> list[Rater]:
    """Every rater (the admin row excluded), by name."""
    rows = store.execute("SELECT name, is_admin, created_at, revoked_at FROM raters WHERE is_admin = 0 ORDER BY name")
    return [Rater(r["name"], False, r["created_at"], r["revoked_at"]) for r in rows]


def has_admin(store: Store) -> bool:
    """Whether an admin token exists."""
    return bool(store.execute("SELECT 1 FROM raters WHERE is_admin = 1"))


def ensure_admin(store: Store) -> str | None:
    """Create the admin token if there is none; returns it, or None when one already exists."""
    token = new_token()
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM raters WHERE is_admin = 1").fetchone():
            return None
        conn.execute(
            "INSERT INTO raters (name, token_hash, is_admin, created_at) VALUES (?,?,1,?)",
            (ADMIN_NAME, hash_token(token), utc_now()),
        )
    return token


def rotate_admin(store: Store) -> str:
    """Replace the admin token (creating it if missing); returns the new plain token."""
    token = new_token()
    with store.transaction() as conn:
        cur = conn.execute("UPDATE raters SET token_hash = ? WHERE is_admin = 1", (hash_token(token),))
        if cur.rowcount == 0:
            conn.execute(
                "INSERT INTO raters (name, token_hash, is_admin, created_at) VALUES (?,?,1,?)",
                (ADMIN_NAME, hash_token(token), utc_now()),
            )
    return token


def rater_for_token(store: Store, token: str) -> Rater | None:
    """The active rater (or admin) holding ``token``; None for unknown or revoked tokens."""
    if not token:
        return None
    rows = store.execute(
        "SELECT name, is_admin, created_at, revoked_at FROM raters WHERE token_hash = ? AND revoked_at IS NULL",
        (hash_token(token),),
    )
    if not rows:
        return None
    r = rows[0]
    return Rater(r["name"], bool(r["is_admin"]), r["created_at"], r["revoked_at"])

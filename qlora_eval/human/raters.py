"""Raters and tokens of human rating (used by the web form and the ``raters`` CLI alike).

A token is ``secrets.token_urlsafe(32)``; the store keeps only its sha256, so a token is shown once, when it
is made. The admin is the row named ``admin`` with ``is_admin = 1``; its token can be replaced
(``rotate_admin``), never shown again.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from qlora_eval.errors import InputError, check_name
from qlora_eval.store import ADMIN_NAME, Rater, Store

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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
    check_name(name, "rater name")  # the one validator of names (control and bidi characters); then our rule
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
    if not store.add_rater(name, hash_token(token)):
        if _is_revoked(store, name):
            raise InputError(
                f"a rater named {name!r} exists and is revoked; reinstate them (with a new token) with "
                f"`qlora-eval raters restore {name}`, or choose another name"
            )
        raise InputError(
            f"a rater named {name!r} already exists; choose another name, or give them a new token with "
            f"`qlora-eval raters token {name}`"
        )
    return token


def _is_revoked(store: Store, name: str) -> bool:
    return any(r.name == name and r.revoked_at is not None for r in store.raters())


def _is_active(store: Store, name: str) -> bool:
    return any(r.name == name and r.revoked_at is None for r in store.raters())


def new_rater_token(store: Store, name: str) -> str:
    """Replace an active rater's token (the old one stops working); returns the new plain token.

    Raises:
        InputError: no active rater has this name.
    """
    token = new_token()
    if not store.set_rater_token(name, hash_token(token)):
        if _is_revoked(store, name):
            raise InputError(f"rater {name!r} is revoked; reinstate them with `qlora-eval raters restore {name}`")
        raise InputError(f"no active rater named {name!r}; see `qlora-eval raters list`")
    return token


def restore_rater(store: Store, name: str) -> str:
    """Reinstate a revoked rater with a new token (their old token stays revoked); returns the new plain token.

    Their earlier votes count as before; new votes are stored under the same judge id ``human:<name>``.

    Raises:
        InputError: no revoked rater has this name (unknown, or still active).
    """
    token = new_token()
    if not store.restore_rater(name, hash_token(token)):
        if _is_active(store, name):
            raise InputError(
                f"rater {name!r} is active, not revoked; for a new token use `qlora-eval raters token {name}`"
            )
        raise InputError(f"no revoked rater named {name!r}; see `qlora-eval raters list`")
    return token


def revoke_rater(store: Store, name: str) -> None:
    """Revoke a rater: their token gets 401 from now on; their votes stay.

    Raises:
        InputError: no active rater has this name.
    """
    if not store.revoke_rater(name):
        raise InputError(f"no active rater named {name!r}; see `qlora-eval raters list`")


def list_raters(store: Store) -> list[Rater]:
    """Every rater (the admin row excluded), by name."""
    return store.raters()


def active_rater_count(store: Store) -> int:
    """How many raters are not revoked."""
    return sum(1 for r in store.raters() if r.revoked_at is None)


def ensure_admin(store: Store) -> str | None:
    """Create the admin token if there is none; returns it, or None when one already exists."""
    token = new_token()
    return token if store.add_admin(hash_token(token)) else None


def rotate_admin(store: Store) -> str:
    """Replace the admin token (creating it if missing); returns the new plain token."""
    token = new_token()
    store.set_admin_token(hash_token(token))
    return token


def rater_for_token(store: Store, token: str) -> Rater | None:
    """The active rater (or admin) holding ``token``; None for unknown or revoked tokens."""
    if not token:
        return None
    return store.rater_by_token_hash(hash_token(token))

"""Token handling of the web form over HTTP: a bearer header or a cookie, checked against the store.

Raters send ``Authorization: Bearer TOKEN`` (scripts) or carry an HttpOnly, SameSite=Strict cookie set
when they open their link ``/rate?token=...``; the admin page takes the admin token the same way
(``/admin?token=...``, cookie scoped to ``/admin``). Tokens themselves are made and checked by
``qlora_eval.human.raters``.
"""

from __future__ import annotations

from fastapi import Request

from qlora_eval.human.raters import rater_for_token
from qlora_eval.store import Rater, Store

RATER_COOKIE = "qe_rater"
ADMIN_COOKIE = "qe_admin"


class AuthError(Exception):
    """No valid token for what was asked (401), or the wrong kind of token (403)."""

    def __init__(self, status: int, message: str, *, html: bool) -> None:
        self.status = status
        self.message = message
        self.html = html
        super().__init__(message)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def authenticate(store: Store, request: Request, cookie: str, *, admin: bool, html: bool) -> Rater:
    """The rater (or, with ``admin``, the admin) whose token the request carries (header first, then cookie).

    Raises:
        AuthError: 401 without a token or with an unknown or revoked one; 403 for the wrong kind of token.
            ``html`` says whether the answer is a page or JSON.
    """
    token = bearer_token(request) or request.cookies.get(cookie)
    if not token:
        what = "the admin link printed by `qlora-eval serve`" if admin else "your personal rating link"
        raise AuthError(401, f"no token: open {what}, or send Authorization: Bearer TOKEN", html=html)
    who = rater_for_token(store, token)
    if who is None:
        raise AuthError(401, "unknown or revoked token; ask the organiser for a new link", html=html)
    if who.is_admin != admin:
        need = "the admin token" if admin else "a rater token (the admin token cannot rate)"
        raise AuthError(403, f"this page needs {need}", html=html)
    return who

"""Links to the web form that carry a token (printed by ``serve`` and ``raters``)."""

from __future__ import annotations

from urllib.parse import quote


def token_link(host: str, port: int, path: str, token: str) -> str:
    """``http://host:port/path?token=...`` with the token URL-quoted and an IPv6 host in brackets."""
    shown_host = f"[{host}]" if ":" in host else host
    return f"http://{shown_host}:{port}{path}?token={quote(token, safe='')}"

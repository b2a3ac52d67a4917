"""Links to the web form that carry a token (printed by ``serve`` and ``raters``)."""

from __future__ import annotations

from urllib.parse import quote


def token_link(host: str, port: int, path: str, token: str, *, https: bool = False) -> str:
    """``http(s)://host:port/path?token=...`` with the token URL-quoted and an IPv6 host in brackets.

    The default port of the scheme (80, 443) is left out.
    """
    scheme = "https" if https else "http"
    shown_host = f"[{host}]" if ":" in host else host
    shown_port = "" if port == (443 if https else 80) else f":{port}"
    return f"{scheme}://{shown_host}{shown_port}{path}?token={quote(token, safe='')}"

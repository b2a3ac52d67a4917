"""The outermost layer of the web app: a request body is read only from a known rater, and only up to 64 KB.

FastAPI reads and parses a body before it resolves the endpoint's dependencies, so without this layer an
anonymous 200 MB POST was read into memory before its missing token got a 401. Here, for any request that
can carry a body (every method but GET/HEAD/OPTIONS):

1. the token (``Authorization: Bearer`` or the rater cookie) is checked first, before a byte is read;
2. a declared ``Content-Length`` over the limit gets 413 at once;
3. the body is read up to the limit (chunked bodies have no length to trust) and 413 ends it beyond that;
   the app then gets the buffered body.

Error answers never echo the request. They close the connection, so an unread rest is not kept.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request

from qlora_eval.web.auth import AuthError

MAX_BODY_BYTES = 64 * 1024
"""The largest request body accepted (a vote with a 2000-character rationale is well under 10 KB)."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class BodyGuard:
    """ASGI middleware: token first, then a capped body (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, check_token: Callable[[Request], object], limit: int = MAX_BODY_BYTES):
        self.app = app
        self.check_token = check_token
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if scope["method"] in _NO_BODY_METHODS:
            # The app never reads these bodies; refuse only one that announces itself as too large.
            if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
                await _answer(send, 413, self._too_large())
                return
            await self.app(scope, receive, send)
            return
        try:
            await run_in_threadpool(self.check_token, Request(scope))
        except AuthError as exc:
            extra = {"www-authenticate": "Bearer"} if exc.status == 401 else {}
            await _answer(send, exc.status, exc.message, extra)
            return
        if declared is not None:
            if not declared.isdigit():
                await _answer(send, 400, "the Content-Length header is not a number")
                return
            if int(declared) > self.limit:
                await _answer(send, 413, self._too_large())
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await _answer(send, 413, self._too_large())
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    def _too_large(self) -> str:
        return f"the request body is larger than {self.limit} bytes; a vote or skip is far smaller"


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the buffered body once, then waits on the real one (disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _answer(send: Send, status: int, detail: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = {
        "content-type": "application/json",
        "content-length": str(len(body)),
        "connection": "close",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        **(extra or {}),
    }
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})

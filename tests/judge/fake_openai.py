"""A small chat-completions server for tests: answers like an OpenAI judge and injects faults on a schedule.

It runs in a thread on 127.0.0.1 (port 0) and counts every HTTP call, so tests can prove how many
calls retries, re-asks, budgets and resumes really cost.

Faults (one per call, taken from ``schedule`` in order; after it runs out every call is ``ok``):

* ``("ok", TEXT)`` or ``"ok"``: a normal reply whose content is TEXT (default: the ``reply`` function).
* ``("429", SECONDS)``: rate limited, with a ``Retry-After`` header.
* ``"500"``: an internal server error; ``"401"``: the key is refused; ``"400"``: the request is rejected.
* ``("timeout", SECONDS)``: sleep SECONDS before answering (longer than the client's timeout).
* ``"malformed"``: status 200 with a body that is not JSON.
* ``("unparsable", TEXT)``: a normal reply whose last line holds no verdict.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Action = str | tuple[str, Any]


def server_tokens(text: str) -> int:
    """The fake server's token count: ASCII letter and digit runs cut into pieces of up to 3, every other
    non-space character one token (code symbols and CJK text cost about a token per character, as in real BPE
    vocabularies), spaces free. Deliberately not the client's counting rule."""
    return len(re.findall(r"[A-Za-z]{1,3}|[0-9]{1,3}|[^\sA-Za-z0-9]", text))


def default_reply(request: dict[str, Any]) -> str:
    """Prefer the longer answer (a deterministic, checkable judge)."""
    # The judge prompt is the user message holding the answers (a re-ask appends more messages after it).
    text = next(m["content"] for m in request["messages"] if "[Answer 1]" in m["content"])
    first = text.split("[Answer 1]", 1)[1].split("[Answer 2]", 1)[0]
    second = text.split("[Answer 2]", 1)[1]
    second = second.split("[End of answer 2]", 1)[0]
    first = first.split("[End of answer 1]", 1)[0]
    if len(first.strip()) == len(second.strip()):
        return "They are equally long.\n3"
    return "The longer one is better.\n" + ("1" if len(first.strip()) > len(second.strip()) else "2")


class FakeOpenAI:
    """The server and its call log; use as a context manager."""

    def __init__(
        self,
        schedule: list[Action] | None = None,
        *,
        reply: Callable[[dict[str, Any]], str] = default_reply,
        delay_s: float = 0.0,
    ) -> None:
        self.schedule: list[Action] = list(schedule or [])
        self.reply = reply
        self.delay_s = delay_s
        self.calls = 0
        self.requests: list[dict[str, Any]] = []
        self.actions: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.calls += 1
                    fake.requests.append(body)
                    action: Action = fake.schedule.pop(0) if fake.schedule else "ok"
                    name = action if isinstance(action, str) else action[0]
                    fake.actions.append(name)
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    if fake.delay_s:
                        time.sleep(fake.delay_s)
                    fake._respond(self, action, body)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _respond(self, handler: BaseHTTPRequestHandler, action: Action, body: dict[str, Any]) -> None:
        name, arg = (action, None) if isinstance(action, str) else action
        if name == "429":
            self._send(handler, 429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {"Retry-After": arg})
        elif name == "401":
            self._send(handler, 401, {"error": {"message": "bad key", "type": "invalid_api_key"}})
        elif name == "400":
            self._send(handler, 400, {"error": {"message": "rejected", "type": "invalid_request_error"}})
        elif name == "500":
            self._send(handler, 500, {"error": {"message": "boom", "type": "server_error"}})
        elif name == "timeout":
            time.sleep(float(arg))
            self._send(handler, 200, self._completion(body, self.reply(body)))
        elif name == "malformed":
            raw = b'{"id": "x", "choices": [ this is not json'
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(raw)))
            handler.end_headers()
            handler.wfile.write(raw)
        elif name == "unparsable":
            self._send(handler, 200, self._completion(body, str(arg or "Both have merits; hard to say.")))
        elif name == "ok":
            self._send(handler, 200, self._completion(body, str(arg) if arg is not None else self.reply(body)))
        else:
            raise ValueError(f"unknown fake action {name!r}")

    @staticmethod
    def _completion(body: dict[str, Any], content: str) -> dict[str, Any]:
        # Usage is counted by the server's own rule (server_tokens), never the client's estimate, so a budget
        # test can catch a client that undercounts.
        messages = body.get("messages", [])
        prompt_tokens = sum(server_tokens(m["content"]) + 4 for m in messages) + 3
        completion_tokens = server_tokens(content)
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any], headers: dict[str, Any] | None = None
    ) -> None:
        raw = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                handler.send_header(key, str(value))
            handler.end_headers()
            handler.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

"""A scripted HTTP server on 127.0.0.1 for the OpenAI client's tests: each call takes the next fault.

Deliberately independent of the client: it knows nothing of retry policies, it only answers each POST with
the next scripted :class:`Fault` (status, headers, raw body, delay) and records when calls arrive.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def completion(content: str = "ok") -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
        }
    ).encode()


@dataclass(frozen=True)
class Fault:
    """One scripted reply."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = field(default_factory=completion)
    delay_s: float = 0.0


def error(status: int, headers: dict[str, str] | None = None) -> Fault:
    body = json.dumps({"error": {"message": f"scripted {status}", "type": "x"}}).encode()
    return Fault(status, headers or {}, body)


class FaultServer:
    """Use as a context manager; ``script`` is consumed call by call, then every call succeeds."""

    def __init__(self, script: list[Fault] | None = None, *, delay_s: float = 0.0) -> None:
        self.script = list(script or [])
        self.delay_s = delay_s
        self.calls = 0
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with server._lock:
                    server.calls += 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.bodies.append(json.loads(raw or b"{}"))
                    fault = server.script.pop(0) if server.script else Fault()
                try:
                    time.sleep(fault.delay_s + server.delay_s)
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(fault.body)))
                    for key, value in fault.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(fault.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left
                finally:
                    with server._lock:
                        server.in_flight -= 1

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

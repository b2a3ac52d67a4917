"""A small OpenAI-compatible worker for router tests: ``GET /health``, ``GET /v1/models``, chat completions.

It answers generation requests with a text whose length depends on the requested model (so a judge that
prefers longer answers gives known verdicts) and judge requests (a prompt holding ``[Answer 1]``) with the
longer-answer verdict. ``fail_every=N`` makes every Nth chat request an HTTP 500. It counts requests and
successes so a test can report how a router spread the load.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.judge.fake_openai import default_reply


class FakeWorker:
    """One worker on 127.0.0.1 (port 0); use as a context manager."""

    def __init__(self, name: str, *, fail_every: int = 0) -> None:
        self.name = name
        self.fail_every = fail_every
        self.requests = 0
        self.ok = 0
        self.failed = 0
        self.health_checks = 0
        self._lock = threading.Lock()
        worker = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/v1/models"):
                    worker._send(self, 200, {"object": "list", "data": [{"id": "any", "object": "model"}]})
                    return
                with worker._lock:
                    worker.health_checks += 1
                worker._send(self, 200, {"status": "ok"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with worker._lock:
                    worker.requests += 1
                    fail = worker.fail_every > 0 and worker.requests % worker.fail_every == 0
                    if fail:
                        worker.failed += 1
                    else:
                        worker.ok += 1
                if fail:
                    worker._send(self, 500, {"error": {"message": f"{worker.name} failed", "type": "server_error"}})
                    return
                worker._send(self, 200, worker._completion(body))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeWorker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages", [])
        if any("[Answer 1]" in str(m.get("content", "")) for m in messages):
            text = default_reply(body)
        else:
            model = str(body.get("model", ""))
            text = f"answer of {model} " + "y" * (10 * (1 + sum(map(ord, model)) % 7))
        words = sum(len(str(m.get("content", "")).split()) for m in messages)
        return {
            "id": "chatcmpl-worker",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "any"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": words, "completion_tokens": len(text.split()), "total_tokens": words + 1},
        }

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(raw)))
            handler.end_headers()
            handler.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass

"""A fake of the OpenAI Batch API for tests, on 127.0.0.1 (port 0), written from the API reference only.

Endpoints: ``POST /v1/files`` (multipart, purpose ``batch``), ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches/{id}``, ``GET /v1/batches`` (newest first, ``after``/``limit``).

It records every ``custom_id`` of every batch created (``submitted``), so tests can prove that no key is
ever submitted twice, and every HTTP call by route (``calls``). Its behaviour is set per batch, in creation
order, by :class:`BatchBehaviour`: partial failures (chosen ``custom_id`` s answered with HTTP 500 lines or
``error`` objects in the error file), expiry (only the first N requests run, the rest come back in the
error file with code ``batch_expired``) and slow completion (``in_progress`` for N polls).

Usage is counted the fake's own way, on purpose unlike any client-side estimate: prompt tokens are the
number of whitespace-separated words of all messages plus 7 per message; completion tokens are the reply's
words plus 1. Tests compare stored token counts against :meth:`FakeBatchServer.usage_for`.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.judge.fake_openai import default_reply

#: Statuses after which a batch never changes again.
TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class BatchBehaviour:
    """How one batch behaves.

    Attributes:
        polls_in_progress: ``GET /v1/batches/{id}`` answers ``in_progress`` this many times before the end.
        fail_500: custom_ids answered with ``status_code`` 500 (a line in the error file).
        fail_error: custom_ids answered with an ``error`` object and no response (error file).
        expire_after: if set, the batch ends ``expired`` after this many requests ran; the rest are error
            lines with code ``batch_expired``.
        reject: the batch ends ``failed`` (validation) with no output or error file.
        replies: custom_id -> reply text (instead of the default judge: the longer answer wins).
    """

    polls_in_progress: int = 0
    fail_500: set[str] = field(default_factory=set)
    fail_error: set[str] = field(default_factory=set)
    expire_after: int | None = None
    reject: bool = False
    replies: dict[str, str] = field(default_factory=dict)


@dataclass
class _Batch:
    data: dict[str, Any]
    lines: list[dict[str, Any]]
    behaviour: BatchBehaviour
    polls: int = 0


def count_usage(body: dict[str, Any], reply: str) -> tuple[int, int]:
    """(prompt_tokens, completion_tokens) the fake bills for one request and its reply."""
    prompt = sum(len(str(m.get("content", "")).split()) + 7 for m in body.get("messages", []))
    return prompt, len(reply.split()) + 1


class FakeBatchServer:
    """The server, its files and batches, and its logs. Use as a context manager.

    Args:
        behaviours: one per created batch, in order; batches past the list behave like ``BatchBehaviour()``.
        reply: the judge used for request bodies (default: the longer answer wins).
        fail_create: how many ``POST /v1/batches`` calls fail with HTTP 500 (after creating nothing).
        create_delay_s: seconds ``POST /v1/batches`` waits *before* creating the batch (a client killed
            meanwhile never learns the batch id, yet the batch is created).
    """

    def __init__(
        self,
        behaviours: list[BatchBehaviour] | None = None,
        *,
        reply: Callable[[dict[str, Any]], str] = default_reply,
        fail_create: int = 0,
        create_delay_s: float = 0.0,
    ) -> None:
        self.behaviours = list(behaviours or [])
        self.reply = reply
        self.fail_create = fail_create
        self.create_delay_s = create_delay_s
        self.files: dict[str, tuple[str, bytes]] = {}  # id -> (purpose, content)
        self.batches: dict[str, _Batch] = {}
        self.batch_order: list[str] = []
        self.submitted: list[str] = []  # every custom_id of every created batch, in order
        self.uploaded: list[str] = []  # every custom_id of every uploaded input file
        self.calls: dict[str, int] = {}
        self.usage: dict[str, tuple[int, int]] = {}  # custom_id -> the usage billed on its last run
        self._lock = threading.Lock()
        self._next = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._dispatch(self, "GET")

            def do_POST(self) -> None:
                fake._dispatch(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- the harness -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeBatchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def duplicates(self) -> list[str]:
        """custom_ids that were part of more than one created batch (must stay empty)."""
        seen: set[str] = set()
        return sorted({k for k in self.submitted if k in seen or seen.add(k)})  # type: ignore[func-returns-value]

    def usage_for(self, custom_id: str) -> tuple[int, int]:
        return self.usage[custom_id]

    def finish_all(self) -> None:
        """Let every batch still running complete at the next poll."""
        with self._lock:
            for batch in self.batches.values():
                batch.behaviour.polls_in_progress = 0

    # -- routing ---------------------------------------------------------------------------------

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = handler.path.split("?", 1)[0].rstrip("/")
        query = dict(p.split("=", 1) for p in handler.path.split("?", 1)[1].split("&")) if "?" in handler.path else {}
        parts = path.split("/")[2:]  # drop "", "v1"
        route = (
            f"{method} /{parts[0] if parts else ''}"
            + ("/{id}" if len(parts) > 1 else "")
            + ("/content" if len(parts) > 2 else "")
        )
        with self._lock:
            self.calls[route] = self.calls.get(route, 0) + 1
        length = int(handler.headers.get("Content-Length", "0"))
        raw = handler.rfile.read(length) if length else b""
        try:
            if route == "POST /files":
                self._send(handler, 200, self._upload(handler.headers.get("Content-Type", ""), raw))
            elif route == "GET /files/{id}/content":
                self._content(handler, parts[1])
            elif route == "POST /batches":
                self._create(handler, json.loads(raw or b"{}"))
            elif route == "GET /batches/{id}":
                self._retrieve(handler, parts[1])
            elif route == "GET /batches":
                self._list(handler, query)
            else:
                self._error(handler, 404, f"no route {method} {path}")
        except _HTTPError as exc:
            self._error(handler, exc.status, exc.message)

    # -- files -----------------------------------------------------------------------------------

    def _upload(self, content_type: str, raw: bytes) -> dict[str, Any]:
        if not content_type.startswith("multipart/form-data"):
            raise _HTTPError(400, f"expected multipart/form-data, got {content_type!r}")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            fields[str(name)] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
        if "purpose" not in fields or "file" not in fields:
            raise _HTTPError(400, f"multipart fields purpose and file are required, got {sorted(fields)}")
        purpose = fields["purpose"][1].decode()
        content = fields["file"][1]
        if purpose == "batch":
            ids = self._validate_input(content)
            with self._lock:
                self.uploaded.extend(ids)
        with self._lock:
            file_id = self._new_id("file")
            self.files[file_id] = (purpose, content)
        return self._file_object(file_id, fields["file"][0] or "upload.jsonl", purpose, content)

    @staticmethod
    def _validate_input(content: bytes) -> list[str]:
        ids: list[str] = []
        for number, line in enumerate(content.decode().splitlines(), 1):
            if not line.strip():
                raise _HTTPError(400, f"line {number}: blank lines are not allowed")
            item = json.loads(line)
            if set(item) != {"custom_id", "method", "url", "body"}:
                raise _HTTPError(400, f"line {number}: keys must be custom_id, method, url, body; got {sorted(item)}")
            if item["method"] != "POST" or item["url"] != "/v1/chat/completions":
                raise _HTTPError(400, f"line {number}: expected POST /v1/chat/completions")
            if item["custom_id"] in ids:
                raise _HTTPError(400, f"line {number}: duplicate custom_id {item['custom_id']!r}")
            ids.append(item["custom_id"])
        return ids

    def _content(self, handler: BaseHTTPRequestHandler, file_id: str) -> None:
        if file_id not in self.files:
            raise _HTTPError(404, f"no file {file_id}")
        raw = self.files[file_id][1]
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    # -- batches ---------------------------------------------------------------------------------

    def _create(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        if self.create_delay_s:
            time.sleep(self.create_delay_s)
        with self._lock:
            if self.fail_create > 0:
                self.fail_create -= 1
                raise _HTTPError(500, "the batch service is unavailable")
        file_id = body.get("input_file_id")
        if file_id not in self.files or self.files[file_id][0] != "batch":
            raise _HTTPError(400, f"input_file_id {file_id!r} is not an uploaded batch file")
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            raise _HTTPError(400, "endpoint must be /v1/chat/completions and completion_window 24h")
        lines = [json.loads(line) for line in self.files[file_id][1].decode().splitlines()]
        with self._lock:
            index = len(self.batch_order)
            behaviour = self.behaviours[index] if index < len(self.behaviours) else BatchBehaviour()
            batch_id = self._new_id("batch")
            now = int(time.time())
            data = {
                "id": batch_id,
                "object": "batch",
                "endpoint": body["endpoint"],
                "errors": None,
                "input_file_id": file_id,
                "completion_window": "24h",
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": now,
                "in_progress_at": None,
                "expires_at": now + 86400,
                "completed_at": None,
                "failed_at": None,
                "expired_at": None,
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "metadata": body.get("metadata"),
            }
            self.batches[batch_id] = _Batch(data, lines, behaviour)
            self.batch_order.append(batch_id)
            self.submitted.extend(line["custom_id"] for line in lines)
            snapshot = json.loads(json.dumps(data))
        self._send(handler, 200, snapshot)

    def _retrieve(self, handler: BaseHTTPRequestHandler, batch_id: str) -> None:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                raise _HTTPError(404, f"no batch {batch_id}")
            if batch.data["status"] not in TERMINAL:
                self._advance(batch)
            snapshot = json.loads(json.dumps(batch.data))
        self._send(handler, 200, snapshot)

    def _list(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        limit = int(query.get("limit", "20"))
        with self._lock:
            newest_first = list(reversed(self.batch_order))
            if "after" in query:
                newest_first = newest_first[newest_first.index(query["after"]) + 1 :]
            page = [json.loads(json.dumps(self.batches[b].data)) for b in newest_first[:limit]]
            has_more = len(newest_first) > limit
        payload = {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": has_more,
        }
        self._send(handler, 200, payload)

    def _advance(self, batch: _Batch) -> None:
        """One poll's worth of progress (called with the lock held)."""
        data, behaviour = batch.data, batch.behaviour
        now = int(time.time())
        if behaviour.reject:
            data.update(
                status="failed",
                failed_at=now,
                errors={"object": "list", "data": [{"code": "invalid_request", "message": "rejected", "line": 1}]},
            )
            return
        if batch.polls < behaviour.polls_in_progress:
            batch.polls += 1
            data.update(status="in_progress", in_progress_at=data["in_progress_at"] or now)
            return
        outputs: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for number, line in enumerate(batch.lines):
            custom_id = line["custom_id"]
            request_id = f"req_{self._new_id('r')}"
            if behaviour.expire_after is not None and number >= behaviour.expire_after:
                errors.append(
                    {
                        "id": f"batch_req_{request_id}",
                        "custom_id": custom_id,
                        "response": None,
                        "error": {
                            "code": "batch_expired",
                            "message": "This request could not be executed before the completion window expired.",
                        },
                    }
                )
            elif custom_id in behaviour.fail_500:
                body = {"error": {"message": "The server had an error", "type": "server_error"}}
                errors.append(
                    {
                        "id": f"batch_req_{request_id}",
                        "custom_id": custom_id,
                        "response": {"status_code": 500, "request_id": request_id, "body": body},
                        "error": None,
                    }
                )
            elif custom_id in behaviour.fail_error:
                errors.append(
                    {
                        "id": f"batch_req_{request_id}",
                        "custom_id": custom_id,
                        "response": None,
                        "error": {"code": "server_error", "message": "Request failed; try again."},
                    }
                )
            else:
                reply = behaviour.replies.get(custom_id) or self.reply(line["body"])
                prompt_tokens, completion_tokens = count_usage(line["body"], reply)
                self.usage[custom_id] = (prompt_tokens, completion_tokens)
                outputs.append(
                    {
                        "id": f"batch_req_{request_id}",
                        "custom_id": custom_id,
                        "response": {
                            "status_code": 200,
                            "request_id": request_id,
                            "body": {
                                "id": f"chatcmpl-{request_id}",
                                "object": "chat.completion",
                                "created": now,
                                "model": line["body"].get("model"),
                                "choices": [
                                    {
                                        "index": 0,
                                        "message": {"role": "assistant", "content": reply},
                                        "finish_reason": "stop",
                                    }
                                ],
                                "usage": {
                                    "prompt_tokens": prompt_tokens,
                                    "completion_tokens": completion_tokens,
                                    "total_tokens": prompt_tokens + completion_tokens,
                                },
                            },
                        },
                        "error": None,
                    }
                )
        # Results come back in no particular order (the API promises none): reverse them to prove it.
        outputs.reverse()
        if outputs:
            data["output_file_id"] = self._store_file("batch_output", outputs)
        if errors:
            data["error_file_id"] = self._store_file("batch_output", errors)
        expired = behaviour.expire_after is not None and behaviour.expire_after < len(batch.lines)
        data.update(
            status="expired" if expired else "completed",
            in_progress_at=data["in_progress_at"] or now,
            request_counts={"total": len(batch.lines), "completed": len(outputs), "failed": len(errors)},
        )
        data["expired_at" if expired else "completed_at"] = now

    def _store_file(self, purpose: str, lines: list[dict[str, Any]]) -> str:
        file_id = self._new_id("file")
        self.files[file_id] = (purpose, "".join(json.dumps(x) + "\n" for x in lines).encode())
        return file_id

    def _new_id(self, prefix: str) -> str:
        self._next += 1
        return f"{prefix}-{self._next:06d}"

    @staticmethod
    def _file_object(file_id: str, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    # -- responses -------------------------------------------------------------------------------

    def _error(self, handler: BaseHTTPRequestHandler, status: int, message: str) -> None:
        self._send(handler, status, {"error": {"message": message, "type": "invalid_request_error"}})

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


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

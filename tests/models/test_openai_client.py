"""The one OpenAI client against a local fault-injecting server: the waits it really used, per fault."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from qlora_eval.errors import BackendError, ConfigError
from qlora_eval.models.openai_client import (
    RETRY_AFTER_MAX_S,
    OpenAIClient,
    RetriesExhausted,
    RetryPolicy,
    resolve_api_key,
    retry_after_s,
)
from tests.models.fault_server import Fault, FaultServer, error

MESSAGES = [{"role": "user", "content": "hi"}]
NOW = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
FAST = RetryPolicy(max_attempts=4, timeout_s=5.0, backoff_base_s=0.01, backoff_max_s=0.05)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


def client(server: FaultServer, waits: list[float], *, retry: RetryPolicy = FAST, seed: int = 0, **kw: int):
    return OpenAIClient(
        base_url=server.base_url,
        api_key="local",
        retry=retry,
        concurrency=kw.get("concurrency", 4),
        rng=np.random.default_rng(seed),
        sleep=waits.append,
        clock=lambda: NOW,
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "2.5"}, 2.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),  # the precise one wins
        ({"Retry-After": "Thu, 01 Jan 2026 00:00:07 GMT"}, 7.0),  # an HTTP date, 7 s after the clock
        ({"Retry-After": "100000"}, RETRY_AFTER_MAX_S),
    ],
)
def test_429_waits_what_retry_after_asks(server: FaultServer, headers: dict[str, str], expected: float) -> None:
    waits: list[float] = []
    server.script = [error(429, headers)]
    reply = client(server, waits).chat("m", MESSAGES)
    assert reply.text == "ok" and reply.attempts == 2 and server.calls == 2
    assert waits == [pytest.approx(expected)]


def test_retry_after_shorter_than_the_backoff_keeps_the_backoff(server: FaultServer) -> None:
    waits: list[float] = []
    server.script = [error(429, {"Retry-After": "0"})]
    client(server, waits, retry=RetryPolicy(backoff_base_s=0.5)).chat("m", MESSAGES)
    assert 0.5 <= waits[0] < 0.75


def test_500s_back_off_exponentially_with_seeded_jitter(server: FaultServer) -> None:
    waits: list[float] = []
    server.script = [error(500), error(502), error(503)]
    retry = RetryPolicy(max_attempts=4, backoff_base_s=1.0, backoff_max_s=100.0)
    reply = client(server, waits, retry=retry, seed=7).chat("m", MESSAGES)
    assert reply.attempts == 4 and server.calls == 4
    jitter = np.random.default_rng(7).random(4)  # one draw per attempt, the successful one included
    assert waits == pytest.approx([2**n * (1 + 0.5 * jitter[n]) for n in range(3)])
    assert all(2**n <= w < 1.5 * 2**n for n, w in enumerate(waits))


def test_backoff_is_capped(server: FaultServer) -> None:
    waits: list[float] = []
    server.script = [error(500)] * 5
    client(server, waits, retry=RetryPolicy(max_attempts=6, backoff_base_s=1.0, backoff_max_s=3.0)).chat("m", MESSAGES)
    assert waits[2:] == [3.0, 3.0, 3.0] and waits[0] < 1.5


def test_timeout_is_retried(server: FaultServer) -> None:
    waits: list[float] = []
    server.script = [Fault(delay_s=0.8)]
    retry = RetryPolicy(max_attempts=2, timeout_s=0.2, backoff_base_s=0.01)
    reply = client(server, waits, retry=retry).chat("m", MESSAGES)
    assert reply.attempts == 2 and len(waits) == 1


def test_garbage_is_retried_or_refused_per_policy(server: FaultServer) -> None:
    waits: list[float] = []
    server.script = [Fault(body=b'{"id": "x", "choices": [ not json'), Fault(body=b'{"choices": []}')]
    reply = client(server, waits).chat("m", MESSAGES)
    assert reply.attempts == 3 and len(waits) == 2
    server.script = [Fault(body=b"<html>proxy error</html>")]
    with pytest.raises(BackendError, match="unusable reply"):
        client(server, [], retry=RetryPolicy(retry_malformed=False)).chat("m", MESSAGES)


def test_exhausted_retries_carry_the_last_error_and_attempts(server: FaultServer) -> None:
    waits: list[float] = []
    server.script = [error(500)] * 4
    with pytest.raises(RetriesExhausted) as caught:
        client(server, waits).chat("m", MESSAGES)
    assert caught.value.attempts == 4 and server.calls == 4 and len(waits) == 3
    assert "HTTP 500" in caught.value.error and "gave up after 4 attempts" in caught.value.error
    assert type(caught.value.last).__name__ == "InternalServerError"


@pytest.mark.parametrize(("status", "message"), [(401, "refused the API key"), (404, "rejected"), (400, "rejected")])
def test_errors_no_retry_fixes_stop_at_once(server: FaultServer, status: int, message: str) -> None:
    waits: list[float] = []
    server.script = [error(status)]
    with pytest.raises(BackendError, match=message):
        client(server, waits).chat("m", MESSAGES)
    assert server.calls == 1 and waits == []


def test_request_fields_and_usage(server: FaultServer) -> None:
    reply = client(server, []).chat("m", MESSAGES, temperature=0.5, max_tokens=9, seed=3)
    assert server.bodies[0]["model"] == "m" and server.bodies[0]["max_tokens"] == 9 and server.bodies[0]["seed"] == 3
    assert (reply.prompt_tokens, reply.completion_tokens) == (7, 2)


def test_concurrency_limits_calls_in_flight() -> None:
    with FaultServer(delay_s=0.2) as server:
        c = client(server, [], concurrency=2)
        threads = [threading.Thread(target=c.chat, args=("m", MESSAGES)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert server.calls == 6 and server.max_in_flight == 2


def test_call_hook_runs_any_endpoint_under_the_policy(server: FaultServer) -> None:
    waits: list[float] = []
    server.script = [error(429, {"retry-after-ms": "20"})]
    result = client(server, waits).call(
        "a raw call", lambda api: api.chat.completions.create(model="m", messages=MESSAGES).id
    )
    assert result == "chatcmpl-1" and waits == [pytest.approx(0.02)]


def test_retry_after_forms_and_junk() -> None:
    assert retry_after_s({}, NOW) is None
    assert retry_after_s({"retry-after": "soon"}, NOW) is None
    assert retry_after_s({"retry-after": "-3"}, NOW) is None
    assert retry_after_s({"retry-after-ms": "x", "retry-after": "4"}, NOW) == 4.0
    assert retry_after_s({"retry-after": "Wed, 31 Dec 2025 23:59:00 GMT"}, NOW) == 0.0  # a date in the past


def test_api_key_from_argument_environment_or_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    assert resolve_api_key(None, None, keyless_local=False, missing_hint="x") == "from-env"
    assert resolve_api_key("given", None, keyless_local=False, missing_hint="x") == "given"
    monkeypatch.delenv("OPENAI_API_KEY")
    assert resolve_api_key(None, "http://127.0.0.1:1/v1", keyless_local=True, missing_hint="x") == "not-needed"
    with pytest.raises(ConfigError, match="set the key"):
        resolve_api_key(None, "http://127.0.0.1:1/v1", keyless_local=False, missing_hint="set the key")
    with pytest.raises(ConfigError, match="set the key"):
        resolve_api_key(None, None, keyless_local=True, missing_hint="set the key")

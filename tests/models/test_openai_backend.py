"""The OpenAI-compatible backend against a local fault-injecting server: retries, backoff, clear failures."""

from __future__ import annotations

import socket
import time

import pytest

from qlora_eval.errors import BackendError
from qlora_eval.models.openai_backend import OpenAIChatModel
from qlora_eval.models.spec import parse_model_spec
from qlora_eval.types import GenerationSettings, Message, Role
from tests.judge.fake_openai import FakeOpenAI

PROMPTS = [[Message(Role.USER, "What is the capital of France?")], [Message(Role.USER, "Hi")]]
SETTINGS = GenerationSettings(seed=3, max_new_tokens=32)


def model_for(base_url: str, **kwargs: float) -> OpenAIChatModel:
    spec = parse_model_spec(f"openai:smol?base_url={base_url}&name=remote")
    return OpenAIChatModel(spec, api_key="local", **kwargs)  # type: ignore[arg-type]


def test_answers_and_passes_settings() -> None:
    with FakeOpenAI(reply=lambda body: " Paris. ") as fake:
        model = model_for(fake.base_url, base_delay_s=0.01)
        out = model.generate(PROMPTS, SETTINGS, stop=["###"])
    assert [c.text for c in out] == ["Paris.", "Paris."]
    assert all(c.completion_tokens > 0 for c in out) and out[0].prompt_tokens > 0
    request = fake.requests[0]
    assert request["model"] == "smol"
    assert request["temperature"] == 0.7 and request["top_p"] == 0.9 and request["max_tokens"] == 32
    assert request["seed"] == 3 and request["stop"] == ["###"]
    assert model.name == "remote"


def test_greedy_sends_temperature_zero() -> None:
    with FakeOpenAI(reply=lambda body: "x") as fake:
        model_for(fake.base_url).generate(PROMPTS[:1], GenerationSettings(do_sample=False))
    assert fake.requests[0]["temperature"] == 0.0


def test_retries_500_and_429_with_backoff_then_succeeds() -> None:
    with FakeOpenAI(["500", ("429", 0), "500"], reply=lambda body: "ok") as fake:
        model = model_for(fake.base_url, base_delay_s=0.05, max_retries=3)
        start = time.perf_counter()
        out = model.generate(PROMPTS[:1], SETTINGS)
        elapsed = time.perf_counter() - start
    assert out[0].text == "ok"
    assert fake.calls == 4
    assert elapsed >= 0.05 + 0.1 + 0.2  # exponential backoff: 0.05, 0.1, 0.2


def test_exhausted_retries_fail_with_a_clear_message() -> None:
    with FakeOpenAI(["500"] * 3) as fake:
        model = model_for(fake.base_url, base_delay_s=0.01, max_retries=2)
        with pytest.raises(BackendError, match=r"failed 3 times.*InternalServerError.*reachable"):
            model.generate(PROMPTS[:1], SETTINGS)
    assert fake.calls == 3


def test_refused_key_is_not_retried() -> None:
    with FakeOpenAI(["401"]) as fake:
        model = model_for(fake.base_url, base_delay_s=0.01)
        with pytest.raises(BackendError, match=r"HTTP 401.*OPENAI_API_KEY"):
            model.generate(PROMPTS[:1], SETTINGS)
    assert fake.calls == 1


def test_malformed_reply_is_a_backend_error() -> None:
    with FakeOpenAI(["malformed"]) as fake, pytest.raises(BackendError):
        model_for(fake.base_url, base_delay_s=0.01, max_retries=1).generate(PROMPTS[:1], SETTINGS)


def test_unreachable_endpoint_is_retried_then_fails() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = model_for(f"http://127.0.0.1:{port}/v1", base_delay_s=0.02, max_retries=2)
    start = time.perf_counter()
    with pytest.raises(BackendError, match=rf"127\.0\.0\.1:{port}/v1 failed 3 times.*APIConnectionError"):
        model.generate(PROMPTS[:1], SETTINGS)
    assert time.perf_counter() - start >= 0.02 + 0.04

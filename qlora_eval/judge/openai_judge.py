"""A judge behind any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, ``transformers serve``).

Reliability is ours, not the client's (the client runs with ``max_retries=0``): each call gets a timeout;
429s wait for ``Retry-After`` (or the backoff, whichever is longer); 5xx, timeouts, connection errors and
malformed responses retry with exponential backoff plus jitter from an explicit random generator; after the
retry budget the request becomes a recorded failure (with the last error) that the next run retries. A reply
without a verdict on its last line is re-asked once; if the second reply has none either, the judgment is
stored as INVALID with both raw replies as its rationale. Errors no retry can fix (bad key, unknown model,
rejected request) stop the run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qlora_eval.errors import BackendError, ConfigError, MissingDependencyError
from qlora_eval.judge.base import CHARS_PER_TOKEN, Budget, Judge, JudgeOutcome, JudgeRequest
from qlora_eval.judge.parse import parse_verdict
from qlora_eval.judge.pricing import Price, estimate_tokens
from qlora_eval.types import Message, Role, Verdict

log = logging.getLogger(__name__)

#: The follow-up sent once when a reply does not end with a verdict line.
REASK_MESSAGE = (
    "Your reply did not end with a line holding only the digit 1, 2 or 3. Reply now with that single "
    "line only: 1 if Answer 1 is better, 2 if Answer 2 is better, 3 if they are equally good."
)
#: Tokens a chat message costs beyond its text (role markers); part of the pre-call estimate.
_MESSAGE_OVERHEAD_TOKENS = 4
#: The longest Retry-After honoured (a server asking for more is waited on this long, then tried again).
_RETRY_AFTER_MAX_S = 600.0


def openai_judge_settings(model: str, temperature: float, max_tokens: int) -> dict[str, Any]:
    """The settings recorded with (and keying) every judgment of an openai judge."""
    return {"protocol": "pairwise-3class", "model": model, "temperature": temperature, "max_tokens": max_tokens}


def estimate_prompt_tokens(messages: Sequence[Message]) -> int:
    """Prompt tokens of a call, estimated before it from its length (see ``CHARS_PER_TOKEN``)."""
    chars = sum(len(m.content) for m in messages)
    return estimate_tokens(chars, CHARS_PER_TOKEN) + _MESSAGE_OVERHEAD_TOKENS * len(messages)


def estimate_call_usd(price: Price | None, messages: Sequence[Message], max_tokens: int) -> float:
    """An upper estimate of one call's cost: the estimated prompt plus a completion of ``max_tokens``."""
    if price is None:
        return 0.0
    return price.cost(estimate_prompt_tokens(messages), max_tokens)


@dataclass(frozen=True)
class RetryPolicy:
    """How a call is retried.

    Attributes:
        max_attempts: calls per request before it is recorded as failed (first try included).
        timeout_s: seconds one HTTP call may take.
        backoff_base_s: the first backoff; attempt n waits ``base * 2**(n-1)``, times a jitter in [1, 1.5).
        backoff_max_s: the cap on one backoff wait (a 429's ``Retry-After`` is honoured beyond it).
    """

    max_attempts: int = 6
    timeout_s: float = 120.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max attempts must be >= 1, got {self.max_attempts}")
        if self.timeout_s <= 0 or self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ConfigError("timeouts and backoff times must be positive")


@dataclass(frozen=True)
class _Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    estimated_usage: bool


class _CallFailed(Exception):
    def __init__(self, error: str, attempts: int) -> None:
        super().__init__(error)
        self.error = error
        self.attempts = attempts


class OpenAIJudge(Judge):
    """Judges through the chat-completions API with our own retry loop.

    Args:
        model: the model name sent to the server (``gpt-4``).
        base_url: the server's ``/v1`` URL; None for OpenAI's (the client reads ``OPENAI_BASE_URL`` then).
        price: dollars per token; None when the price table does not list the model (cost counts as 0).
        temperature, max_tokens: sampling settings (recorded in every judgment's settings).
        concurrency: calls in flight at once.
        retry: the retry policy.
        rng: the source of backoff jitter.
        judge_id: recorded with every judgment; default ``openai:MODEL``.
        sleep: how to wait (tests pass a recorder).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None,
        price: Price | None,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        rng: np.random.Generator | None = None,
        judge_id: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if temperature < 0:
            raise ConfigError(f"judge temperature must be >= 0, got {temperature}")
        if max_tokens < 1:
            raise ConfigError(f"judge max tokens must be >= 1, got {max_tokens}")
        if concurrency < 1:
            raise ConfigError(f"--concurrency must be >= 1, got {concurrency}")
        try:
            import openai
        except ImportError as exc:
            raise MissingDependencyError("openai", "pip install 'qlora-eval[openai]'", "an openai: judge") from exc
        self._openai = openai
        self.model = model
        self.base_url = base_url
        self.price = price
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.concurrency = concurrency
        self.batch_size = 1
        self.retry = retry or RetryPolicy()
        self.judge_id = judge_id or f"openai:{model}"
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self._rng_lock = threading.Lock()
        self._sleep = sleep
        api_key = os.environ.get("OPENAI_API_KEY")
        if api_key is None:
            if base_url is None:
                raise ConfigError(
                    "the openai judge needs an API key: export OPENAI_API_KEY=... (or use a local judge, "
                    "e.g. --judge local:smollm2-135m)"
                )
            api_key = "not-needed"  # local OpenAI-compatible servers accept any key
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=self.retry.timeout_s)

    @property
    def settings(self) -> dict[str, Any]:
        return openai_judge_settings(self.model, self.temperature, self.max_tokens)

    def estimate_usd(self, request: JudgeRequest) -> float:
        return estimate_call_usd(self.price, request.messages, self.max_tokens)

    @staticmethod
    def estimate_prompt_tokens(messages: Sequence[Message]) -> int:
        return estimate_prompt_tokens(messages)

    def judge_batch(self, requests: Sequence[JudgeRequest], budget: Budget) -> list[JudgeOutcome]:
        return [self._judge_one(r, budget) for r in requests]

    def close(self) -> None:
        self._client.close()

    # -- one request ---------------------------------------------------------------------------

    def _judge_one(self, request: JudgeRequest, budget: Budget) -> JudgeOutcome:
        start = time.perf_counter()
        messages = list(request.messages)
        try:
            first, attempts = self._call(messages)
        except _CallFailed as failed:
            return JudgeOutcome(request, None, failed.error, failed.attempts)
        cost = self._cost(first)
        prompt_tokens, completion_tokens = first.prompt_tokens, first.completion_tokens
        verdict, rationale, reasked = parse_verdict(first.text), first.text, False
        if verdict is Verdict.INVALID:
            follow_up = [*messages, Message(Role.ASSISTANT, first.text), Message(Role.USER, REASK_MESSAGE)]
            estimate = estimate_call_usd(self.price, follow_up, self.max_tokens)
            if not budget.try_reserve(estimate):
                return JudgeOutcome(
                    request, None, "the budget ran out before the re-ask of an unparsable reply", attempts, cost
                )
            try:
                second, more = self._call(follow_up)
            except _CallFailed as failed:
                budget.settle(estimate, 0.0)
                return JudgeOutcome(request, None, f"re-ask failed: {failed.error}", attempts + failed.attempts, cost)
            budget.settle(estimate, 0.0)  # the runner settles the whole outcome's cost
            attempts += more
            reasked = True
            cost += self._cost(second)
            prompt_tokens += second.prompt_tokens
            completion_tokens += second.completion_tokens
            verdict = parse_verdict(second.text)
            rationale = f"{first.text}\n\n[re-asked for the verdict line]\n{second.text}"
        judgment = request.judgment(
            self.judge_id,
            self.settings,
            verdict,
            rationale if rationale.strip() else "(the judge replied with empty text)",
            cost_usd=cost,
            latency_s=time.perf_counter() - start,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
        return JudgeOutcome(request, judgment, None, attempts, cost, reasked)

    def _cost(self, reply: _Reply) -> float:
        return self.price.cost(reply.prompt_tokens, reply.completion_tokens) if self.price else 0.0

    def _backoff(self, attempt: int) -> float:
        with self._rng_lock:
            jitter = 1.0 + 0.5 * float(self._rng.random())
        return min(self.retry.backoff_max_s, self.retry.backoff_base_s * 2 ** (attempt - 1) * jitter)

    def _call(self, messages: Sequence[Message]) -> tuple[_Reply, int]:
        """One completion, retried; returns the reply and the number of HTTP calls it took."""
        openai = self._openai
        last_error = "no attempt was made"
        for attempt in range(1, self.retry.max_attempts + 1):
            wait_s = self._backoff(attempt)
            try:
                response = self._client.chat.completions.create(
                    model=self.model,
                    messages=[m.to_dict() for m in messages],  # type: ignore[misc]
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                    timeout=self.retry.timeout_s,
                )
                return self._reply(response, messages), attempt
            except openai.RateLimitError as exc:
                retry_after = _retry_after_s(exc.response.headers)
                last_error = f"HTTP 429 rate limited: {exc.message}"
                if retry_after is not None:
                    # The server knows when it will accept us again; waiting less only earns another 429.
                    wait_s = min(retry_after, _RETRY_AFTER_MAX_S)
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise BackendError(
                    f"the judge server {self._where()} refused the API key (HTTP {exc.status_code}): {exc.message}; "
                    "check OPENAI_API_KEY"
                ) from exc
            except (openai.NotFoundError, openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                raise BackendError(
                    f"the judge server {self._where()} rejected the request for model {self.model!r} "
                    f"(HTTP {exc.status_code}): {exc.message}; check the judge spec's model name and base_url"
                ) from exc
            except openai.APITimeoutError:
                last_error = f"timed out after {self.retry.timeout_s:g} s"
            except openai.APIConnectionError as exc:
                last_error = f"cannot connect to {self._where()}: {exc}"
            except openai.APIStatusError as exc:
                last_error = f"HTTP {exc.status_code}: {exc.message}"
            except (json.JSONDecodeError, openai.APIResponseValidationError, _MalformedResponse) as exc:
                last_error = f"malformed response: {exc}"
            if attempt < self.retry.max_attempts:
                log.info("judge call attempt %d failed (%s); retrying in %.2f s", attempt, last_error, wait_s)
                self._sleep(wait_s)
        raise _CallFailed(f"{last_error} (gave up after {self.retry.max_attempts} attempts)", self.retry.max_attempts)

    def _reply(self, response: Any, messages: Sequence[Message]) -> _Reply:
        try:
            text = response.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as exc:
            raise _MalformedResponse(f"no choices[0].message.content in {str(response)[:200]!r}") from exc
        if not isinstance(text, str):
            raise _MalformedResponse(f"choices[0].message.content is {type(text).__name__}, not text")
        usage = getattr(response, "usage", None)
        if usage is not None and usage.prompt_tokens is not None and usage.completion_tokens is not None:
            return _Reply(text, int(usage.prompt_tokens), int(usage.completion_tokens), False)
        # The server reported no usage: estimate it the way --dry-run does, so costs are never silently 0.
        return _Reply(text, self.estimate_prompt_tokens(messages), estimate_tokens(len(text), CHARS_PER_TOKEN), True)

    def _where(self) -> str:
        return self.base_url or "api.openai.com"


class _MalformedResponse(Exception):
    pass


def _retry_after_s(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds); None when absent or not a number."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue  # an HTTP date: rare from APIs; the backoff applies instead
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None

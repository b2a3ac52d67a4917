"""A judge behind any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, ``transformers serve``).

Reliability is the shared client's (:mod:`qlora_eval.models.openai_client`): timeouts, retries with backoff
plus jitter from an explicit random generator, Retry-After in all its forms. After the retry budget the request
becomes a recorded failure (with the last error) that the next run retries. A reply without a verdict on its
last line is re-asked once; if the second reply has none either, the judgment is stored as INVALID with both raw
replies as its rationale. Errors no retry can fix (bad key, unknown model, rejected request) stop the run.

The kind ``openai`` (spec ``openai:MODEL[?base_url=URL]``) is registered by :data:`KIND`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from qlora_eval.errors import ConfigError
from qlora_eval.judge.base import Budget, Judge, JudgeOutcome, JudgeRequest
from qlora_eval.judge.kind import JudgeKind, JudgeSpec
from qlora_eval.judge.options import JudgeOptions
from qlora_eval.judge.pricing import Price, PriceTable
from qlora_eval.judge.tokens import TokenCounter, token_counter
from qlora_eval.models.openai_client import ChatReply, OpenAIClient, RetriesExhausted, RetryPolicy, resolve_api_key
from qlora_eval.types import Message, Role, Verdict

__all__ = [
    "KIND",
    "REASK_MESSAGE",
    "Completion",
    "OpenAIJudge",
    "RetryPolicy",
    "estimate_call_usd",
    "estimate_prompt_tokens",
    "openai_judge_settings",
]

#: The follow-up sent once when a reply does not end with a verdict line.
REASK_MESSAGE = (
    "Your reply did not end with a line holding only the digit 1, 2 or 3. Reply now with that single "
    "line only: 1 if Answer 1 is better, 2 if Answer 2 is better, 3 if they are equally good."
)
#: Tokens a chat message costs beyond its text (role markers), and the reply's priming tokens: part of the
#: pre-call count (OpenAI's chat format adds about 3 per message and 3 per reply).
_MESSAGE_OVERHEAD_TOKENS = 4
_REPLY_PRIMING_TOKENS = 3


def openai_judge_settings(model: str, temperature: float, max_tokens: int) -> dict[str, Any]:
    """The settings recorded with (and keying) every judgment of an openai judge."""
    return {"protocol": "pairwise-3class", "model": model, "temperature": temperature, "max_tokens": max_tokens}


def estimate_prompt_tokens(messages: Sequence[Message], counter: TokenCounter) -> int:
    """Prompt tokens of a call, counted before it with ``counter`` (the model's tokenizer or the fallback)."""
    overhead = _MESSAGE_OVERHEAD_TOKENS * len(messages) + _REPLY_PRIMING_TOKENS
    return sum(counter.count(m.content) for m in messages) + overhead


def estimate_call_usd(
    price: Price | None, messages: Sequence[Message], max_tokens: int, counter: TokenCounter
) -> float:
    """An upper estimate of one call's cost: the counted prompt plus a completion of ``max_tokens`` (reserved)."""
    if price is None:
        return 0.0
    return price.cost(estimate_prompt_tokens(messages, counter), max_tokens)


@dataclass(frozen=True)
class _Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Completion:
    """What :meth:`OpenAIJudge.complete` got: the reply text (None after the retry budget: see ``error``)."""

    text: str | None
    prompt_tokens: int
    completion_tokens: int
    attempts: int
    cost_usd: float
    error: str | None


class _CallFailed(Exception):
    def __init__(self, error: str, attempts: int) -> None:
        super().__init__(error)
        self.error = error
        self.attempts = attempts


class OpenAIJudge(Judge):
    """Judges through the chat-completions API, through the shared :class:`OpenAIClient`.

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
        clock: the current time, for HTTP-date Retry-After values (tests pass a fixed one).
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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if temperature < 0:
            raise ConfigError(f"judge temperature must be >= 0, got {temperature}")
        if max_tokens < 1:
            raise ConfigError(f"judge max tokens must be >= 1, got {max_tokens}")
        if concurrency < 1:
            raise ConfigError(f"--concurrency must be >= 1, got {concurrency}")
        self.model = model
        self.base_url = base_url
        self.price = price
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.concurrency = concurrency
        self.batch_size = 1
        self.retry = retry or RetryPolicy()
        self.judge_id = judge_id or f"openai:{model}"
        self.tokens = token_counter(model)
        api_key = resolve_api_key(
            None,
            base_url,
            keyless_local=True,
            missing_hint="the openai judge needs an API key: export OPENAI_API_KEY=... (or use a local judge, "
            "e.g. --judge local:smollm2-135m)",
        )
        self._client = OpenAIClient(
            base_url=base_url,
            api_key=api_key,
            retry=self.retry,
            concurrency=concurrency,
            rng=rng if rng is not None else np.random.default_rng(0),
            sleep=sleep,
            clock=clock,
            purpose="judge",
        )

    @property
    def settings(self) -> dict[str, Any]:
        return openai_judge_settings(self.model, self.temperature, self.max_tokens)

    def estimate_usd(self, request: JudgeRequest) -> float:
        return estimate_call_usd(self.price, request.messages, self.max_tokens, self.tokens)

    def estimate_prompt_tokens(self, messages: Sequence[Message]) -> int:
        return estimate_prompt_tokens(messages, self.tokens)

    def judge_batch(self, requests: Sequence[JudgeRequest], budget: Budget) -> list[JudgeOutcome]:
        return [self._judge_one(r, budget) for r in requests]

    def close(self) -> None:
        self._client.close()

    def complete(self, messages: Sequence[Message]) -> Completion:
        """One chat completion under the retry policy, for protocols that read the reply themselves (relative).

        Returns:
            The reply and its usage and cost, or (``text`` None) the error after the retry budget.
        """
        try:
            reply, attempts = self._call(messages)
        except _CallFailed as failed:
            return Completion(None, 0, 0, failed.attempts, 0.0, failed.error)
        return Completion(reply.text, reply.prompt_tokens, reply.completion_tokens, attempts, self._cost(reply), None)

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
        verdict, rationale, reasked = request.template.parse_verdict(first.text), first.text, False
        if verdict is Verdict.INVALID:
            follow_up = [*messages, Message(Role.ASSISTANT, first.text), Message(Role.USER, REASK_MESSAGE)]
            estimate = estimate_call_usd(self.price, follow_up, self.max_tokens, self.tokens)
            # The first reply is paid for: if the re-ask cannot happen, it is stored as INVALID with its text
            # and cost (never dropped, so no later run pays for it again unless --retry-invalid).
            if not budget.try_reserve(estimate):
                note = "[not re-asked for the verdict line: the budget ran out]"
                return self._paid_invalid(request, first, note, attempts, start)
            try:
                second, more = self._call(follow_up)
            except _CallFailed as failed:
                budget.settle(estimate, 0.0)
                note = f"[the re-ask for the verdict line failed: {failed.error}]"
                return self._paid_invalid(request, first, note, attempts + failed.attempts, start)
            budget.settle(estimate, 0.0)  # the runner settles the whole outcome's cost
            attempts += more
            reasked = True
            cost += self._cost(second)
            prompt_tokens += second.prompt_tokens
            completion_tokens += second.completion_tokens
            verdict = request.template.parse_verdict(second.text)
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

    def _paid_invalid(
        self, request: JudgeRequest, first: _Reply, note: str, attempts: int, start: float
    ) -> JudgeOutcome:
        """The outcome for a paid reply without a verdict whose re-ask could not happen: an INVALID judgment."""
        cost = self._cost(first)
        judgment = request.judgment(
            self.judge_id,
            self.settings,
            Verdict.INVALID,
            f"{first.text}\n\n{note}",
            cost_usd=cost,
            latency_s=time.perf_counter() - start,
            prompt_tokens=first.prompt_tokens,
            completion_tokens=first.completion_tokens,
        )
        return JudgeOutcome(request, judgment, None, attempts, cost)

    def _cost(self, reply: _Reply) -> float:
        return self.price.cost(reply.prompt_tokens, reply.completion_tokens) if self.price else 0.0

    def _call(self, messages: Sequence[Message]) -> tuple[_Reply, int]:
        """One completion through the client; returns the reply and the number of HTTP calls it took."""
        try:
            reply = self._client.chat(
                self.model,
                [m.to_dict() for m in messages],
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
        except RetriesExhausted as exc:
            raise _CallFailed(exc.error, exc.attempts) from exc
        return self._usage(reply, messages), reply.attempts

    def _usage(self, reply: ChatReply, messages: Sequence[Message]) -> _Reply:
        if reply.prompt_tokens is not None and reply.completion_tokens is not None:
            return _Reply(reply.text, reply.prompt_tokens, reply.completion_tokens)
        # The server reported no usage: estimate it the way --dry-run does, so costs are never silently 0.
        return _Reply(reply.text, estimate_prompt_tokens(messages, self.tokens), self.tokens.count(reply.text))


# -- the kind ----------------------------------------------------------------------------------------------


def _parse(text: str, rest: str) -> JudgeSpec:
    from urllib.parse import parse_qsl

    from qlora_eval.judge.registry import judge_grammar

    model, _, query = rest.partition("?")
    options: dict[str, str] = {}
    if query:
        try:
            options = dict(parse_qsl(query, strict_parsing=True))
        except ValueError as exc:
            raise ConfigError(f"bad judge spec {text!r}: options must be key=value ({exc})\n{judge_grammar()}") from exc
    unknown = sorted(set(options) - {"base_url"})
    if unknown or not model:
        problem = f"unknown options {unknown}" if unknown else "the model name is empty"
        raise ConfigError(f"bad judge spec {text!r}: {problem}\n{judge_grammar()}")
    return JudgeSpec(text=text, kind=KIND, target=model, base_url=options.get("base_url"))


def _build(spec: JudgeSpec, options: JudgeOptions, price: Price | None) -> Judge:
    return OpenAIJudge(
        spec.target,
        base_url=spec.base_url,
        price=price,
        temperature=options.temperature,
        max_tokens=options.max_tokens,
        concurrency=options.concurrency,
        retry=options.retry,
        rng=np.random.default_rng(options.seed),
        judge_id=spec.judge_id,
    )


def _price(spec: JudgeSpec, table: PriceTable) -> Price | None:
    return table.get(spec.target)


KIND = JudgeKind(
    name="openai",
    grammar="openai:MODEL[?base_url=URL]   any OpenAI-compatible server (default openai:gpt-4; key from "
    "OPENAI_API_KEY)",
    parse=_parse,
    settings=lambda spec, options: openai_judge_settings(spec.target, options.temperature, options.max_tokens),
    price=_price,
    completion_tokens=lambda options: options.max_tokens,
    build=_build,
    runs_locally=False,
)

"""The OpenAI-compatible backend: OpenAI itself, vLLM's server, ``transformers serve``, ...

The API key comes from the ``api_key`` argument or the ``OPENAI_API_KEY`` environment variable; local
servers that check no key still need the variable set to some value (``OPENAI_API_KEY=local``), so that
a missing key is always a deliberate choice, never a silent default.

Calls go through the shared :class:`~qlora_eval.models.openai_client.OpenAIClient` (timeouts, retries with
backoff and jitter, Retry-After). When the retries run out, or at once for errors no retry fixes (400, 401,
404, a reply that is not a completion), a :class:`~qlora_eval.errors.BackendError` says what failed and what
to check.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from qlora_eval.errors import BackendError, ConfigError
from qlora_eval.models.base import ChatModel, Completion, is_greedy
from qlora_eval.models.openai_client import OpenAIClient, RetriesExhausted, RetryPolicy, resolve_api_key
from qlora_eval.models.spec import Backend, ModelSpec
from qlora_eval.types import GenerationSettings, Message


class OpenAIChatModel(ChatModel):
    """Chat completions from an OpenAI-compatible server, one request per conversation, ``concurrency`` at once.

    Args:
        spec: an ``openai:MODEL?base_url=URL`` spec (no ``base_url``: api.openai.com).
        api_key: the key; ``None`` reads ``OPENAI_API_KEY``.
        max_retries: retries after the first attempt for retryable failures.
        base_delay_s: the first backoff delay; it doubles each retry (times a jitter in [1, 1.5)).
        timeout_s: per-request timeout.
        concurrency: requests in flight at once within a batch (the spec's ``concurrency=N`` wins: a vLLM server
            with ``--data-parallel-size 8`` or a vllm-router in front of several wants many more than 8).
        seed: seeds the backoff jitter.
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        api_key: str | None = None,
        max_retries: int = 5,
        base_delay_s: float = 1.0,
        timeout_s: float = 120.0,
        concurrency: int = 8,
        seed: int = 0,
    ) -> None:
        if spec.backend is not Backend.OPENAI:
            raise ConfigError(f"OpenAIChatModel needs an openai: spec, got {spec.text!r}")
        key = resolve_api_key(
            api_key,
            spec.base_url,
            keyless_local=False,
            missing_hint=f"model {spec.text!r} needs an API key: set OPENAI_API_KEY "
            "(for a local server that checks none, any value works, e.g. OPENAI_API_KEY=local)",
        )
        self.spec = spec
        if "concurrency" in spec.options:
            concurrency = int(spec.options["concurrency"])  # checked by parse_model_spec
        self.concurrency = concurrency
        # A reply that is not a completion is not retried here: a server that sends one usually sends it again.
        retry = RetryPolicy(
            max_attempts=max_retries + 1, timeout_s=timeout_s, backoff_base_s=base_delay_s, retry_malformed=False
        )
        self._client = OpenAIClient(
            base_url=spec.base_url,
            api_key=key,
            retry=retry,
            concurrency=concurrency,
            rng=np.random.default_rng(seed),
            purpose="model",
        )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def endpoint(self) -> str:
        return self._client.endpoint

    def generate(
        self,
        prompts: Sequence[Sequence[Message]],
        settings: GenerationSettings,
        *,
        stop: Sequence[str] = (),
    ) -> list[Completion]:
        """One chat completion per conversation (``seed`` is passed; servers may or may not honour it)."""
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(prompts)))) as pool:
            return list(pool.map(lambda turns: self._one(turns, settings, stop), prompts))

    def _one(self, turns: Sequence[Message], settings: GenerationSettings, stop: Sequence[str]) -> Completion:
        request: dict[str, Any] = {
            "max_tokens": settings.max_new_tokens,
            "temperature": 0.0 if is_greedy(settings) else settings.temperature,
            "top_p": 1.0 if is_greedy(settings) else settings.top_p,
            "seed": settings.seed,
        }
        if stop:
            request["stop"] = list(stop)
        start = time.perf_counter()
        try:
            reply = self._client.chat(self.spec.target, [m.to_dict() for m in turns], **request)
        except RetriesExhausted as exc:
            last = exc.last
            raise BackendError(
                f"{self.endpoint} failed {exc.attempts} times for model {self.spec.target!r} "
                f"(last error: {type(last).__name__}: {exc.error}). Is the server running and reachable at that "
                "base_url?"
            ) from last
        latency = time.perf_counter() - start
        return Completion(
            text=reply.text.strip(),
            prompt_tokens=reply.prompt_tokens or 0,
            completion_tokens=reply.completion_tokens or 0,
            latency_s=latency,
        )

    def close(self) -> None:
        self._client.close()

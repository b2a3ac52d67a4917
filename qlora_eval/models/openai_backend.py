"""The OpenAI-compatible backend: OpenAI itself, vLLM's server, ``transformers serve``, ...

The API key comes from the ``api_key`` argument or the ``OPENAI_API_KEY`` environment variable; local
servers that check no key still need the variable set to some value (``OPENAI_API_KEY=local``), so that
a missing key is always a deliberate choice, never a silent default.

Failures: connection errors, timeouts, HTTP 429 and 5xx are retried with exponential backoff
(``base_delay_s * 2**attempt``, ``max_retries`` times); then, or at once for other HTTP errors
(400, 401, 404, ...), a :class:`~qlora_eval.errors.BackendError` says what failed and what to check.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from qlora_eval.errors import BackendError, ConfigError, MissingDependencyError
from qlora_eval.models.base import ChatModel, Completion, is_greedy
from qlora_eval.models.spec import Backend, ModelSpec
from qlora_eval.types import GenerationSettings, Message

log = logging.getLogger(__name__)


class OpenAIChatModel(ChatModel):
    """Chat completions from an OpenAI-compatible server, one request per conversation, ``concurrency`` at once.

    Args:
        spec: an ``openai:MODEL?base_url=URL`` spec (no ``base_url``: api.openai.com).
        api_key: the key; ``None`` reads ``OPENAI_API_KEY``.
        max_retries: retries after the first attempt for retryable failures.
        base_delay_s: the first backoff delay; it doubles each retry.
        timeout_s: per-request timeout.
        concurrency: requests in flight at once within a batch.
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
    ) -> None:
        if spec.backend is not Backend.OPENAI:
            raise ConfigError(f"OpenAIChatModel needs an openai: spec, got {spec.text!r}")
        try:
            import openai
        except ImportError as exc:
            raise MissingDependencyError("openai", "pip install 'qlora-eval[openai]'", "the openai backend") from exc
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ConfigError(
                f"model {spec.text!r} needs an API key: set OPENAI_API_KEY "
                "(for a local server that checks none, any value works, e.g. OPENAI_API_KEY=local)"
            )
        self.spec = spec
        self.max_retries = max_retries
        self.base_delay_s = base_delay_s
        self.concurrency = concurrency
        # Retries are ours (own backoff and final message), so the client's are off.
        self._client = openai.OpenAI(api_key=key, base_url=spec.base_url, max_retries=0, timeout=timeout_s)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def endpoint(self) -> str:
        return self.spec.base_url or "https://api.openai.com/v1"

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
            "model": self.spec.target,
            "messages": [m.to_dict() for m in turns],
            "max_tokens": settings.max_new_tokens,
            "temperature": 0.0 if is_greedy(settings) else settings.temperature,
            "top_p": 1.0 if is_greedy(settings) else settings.top_p,
            "seed": settings.seed,
        }
        if stop:
            request["stop"] = list(stop)
        start = time.perf_counter()
        response = self.call_with_retries(lambda: self._client.chat.completions.create(**request))
        latency = time.perf_counter() - start
        if not response.choices:
            raise BackendError(f"{self.endpoint} returned no choices for model {self.spec.target!r}")
        text = response.choices[0].message.content or ""
        usage = response.usage
        return Completion(
            text=text.strip(),
            prompt_tokens=int(usage.prompt_tokens) if usage else 0,
            completion_tokens=int(usage.completion_tokens) if usage else 0,
            latency_s=latency,
        )

    def call_with_retries(self, call: Any) -> Any:
        """Run ``call()``; retry connection errors, timeouts, 429 and 5xx with exponential backoff.

        Raises:
            BackendError: after the last retry, or at once for a non-retryable HTTP error.
        """
        import openai

        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            try:
                return call()
            except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as exc:
                last = exc
            except openai.APIStatusError as exc:
                if exc.status_code < 500:
                    raise BackendError(
                        f"{self.endpoint} refused the request for model {self.spec.target!r} "
                        f"(HTTP {exc.status_code}): {exc.message}. Check the model name, OPENAI_API_KEY and base_url."
                    ) from exc
                last = exc
            except (openai.APIError, ValueError) as exc:  # not a valid completion (bad JSON): retrying will not help
                raise BackendError(
                    f"{self.endpoint} sent an unusable reply for model {self.spec.target!r}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if attempt < self.max_retries:
                delay = self.base_delay_s * 2**attempt
                log.warning(
                    "%s failed (%s); retry %d/%d in %.1fs", self.endpoint, last, attempt + 1, self.max_retries, delay
                )
                time.sleep(delay)
        raise BackendError(
            f"{self.endpoint} failed {self.max_retries + 1} times for model {self.spec.target!r} "
            f"(last error: {type(last).__name__}: {last}). Is the server running and reachable at that base_url?"
        ) from last

    def close(self) -> None:
        self._client.close()

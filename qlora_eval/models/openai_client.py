"""The one client for OpenAI-compatible chat completions (OpenAI, vLLM's server, ``transformers serve``, ...).

Generation (:mod:`qlora_eval.models.openai_backend`) and judging (:mod:`qlora_eval.judge.openai_judge`) both
call through :class:`OpenAIClient`, so the retry policy lives here only:

* every HTTP call has a timeout (``RetryPolicy.timeout_s``);
* connection errors, timeouts, HTTP 408/409/429 and 5xx are retried, attempt ``n`` waiting
  ``backoff_base_s * 2**(n-1)`` times a jitter in [1, 1.5) drawn from an explicit ``numpy`` generator, capped
  at ``backoff_max_s``;
* a ``Retry-After`` header (``retry-after-ms`` in milliseconds, ``retry-after`` in seconds or as an HTTP date)
  raises that wait to the server's (up to :data:`RETRY_AFTER_MAX_S`): waiting less only earns another 429;
* malformed replies (not JSON, no ``choices[0].message.content``) are retried or not, per the policy;
* errors no retry can fix (bad key, unknown model, rejected request) raise :class:`BackendError` at once;
  when the attempts run out, :class:`RetriesExhausted` carries the last error and the attempt count, and the
  caller decides (the judge records a failure, generation stops).

The API key: ``OPENAI_API_KEY`` is read here and nowhere else (:func:`resolve_api_key`). The ``openai``
client's own retries are off (``max_retries=0``): this module's loop is the only one.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import numpy as np

from qlora_eval.errors import BackendError, ConfigError, MissingDependencyError

log = logging.getLogger(__name__)

#: The longest Retry-After honoured (a server asking for more is waited on this long, then tried again).
RETRY_AFTER_MAX_S = 600.0
#: HTTP statuses worth another try (the ones the openai client itself retries).
RETRYABLE_STATUSES = frozenset({408, 409, 429})
#: What an unset ``base_url`` means.
OPENAI_API_URL = "https://api.openai.com/v1"

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How a call is retried.

    Attributes:
        max_attempts: calls per request before giving up (first try included).
        timeout_s: seconds one HTTP call may take.
        backoff_base_s: the first backoff; attempt n waits ``base * 2**(n-1)``, times a jitter in [1, 1.5).
        backoff_max_s: the cap on one backoff wait (a ``Retry-After`` is honoured beyond it).
        retry_malformed: whether a reply that is not a valid completion is retried (True) or raises
            :class:`BackendError` at once (False).
    """

    max_attempts: int = 6
    timeout_s: float = 120.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    retry_malformed: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max attempts must be >= 1, got {self.max_attempts}")
        if self.timeout_s <= 0 or self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ConfigError("timeouts and backoff times must be positive")

    def backoff_s(self, attempt: int, jitter: float) -> float:
        """The wait after failed attempt ``attempt`` (1-based), for a ``jitter`` in [0, 1)."""
        return min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1) * (1.0 + 0.5 * jitter))


@dataclass(frozen=True)
class ChatReply:
    """One completion.

    Attributes:
        text: ``choices[0].message.content``.
        prompt_tokens, completion_tokens: the server's usage report; None when it sent none.
        attempts: HTTP calls it took (retries included).
    """

    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    attempts: int


class RetriesExhausted(Exception):
    """Every attempt failed with a retryable error.

    Attributes:
        error: the last error in words, ending with how many attempts were made.
        attempts: the attempts made.
        last: the last exception.
    """

    def __init__(self, error: str, attempts: int, last: BaseException | None) -> None:
        super().__init__(error)
        self.error = error
        self.attempts = attempts
        self.last = last


class MalformedResponse(Exception):
    """A 200 reply that is not a chat completion with text."""


def resolve_api_key(api_key: str | None, base_url: str | None, *, keyless_local: bool, missing_hint: str) -> str:
    """The API key: ``api_key``, else ``OPENAI_API_KEY``.

    Args:
        api_key: an explicit key (None: read the environment).
        base_url: the server; None is OpenAI's own API, which always needs a key.
        keyless_local: whether a server at ``base_url`` may be used without a key (local servers accept any).
        missing_hint: what to do, appended to the error when no key is found.

    Raises:
        ConfigError: no key where one is needed.
    """
    key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if keyless_local and base_url is not None:
        return "not-needed"  # local OpenAI-compatible servers accept any key
    raise ConfigError(missing_hint)


def retry_after_s(headers: Mapping[str, str] | Any, now: datetime) -> float | None:
    """Seconds the server asks to wait: ``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date).

    Args:
        headers: the response headers (case-insensitive lookup, as httpx gives them).
        now: the current time (an HTTP date counts from it).

    Returns:
        The wait, or None when no header holds a usable value (a date in the past counts as 0).
    """
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            seconds = float(value) / 1000.0
            if math.isfinite(seconds) and seconds >= 0:
                return seconds
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class OpenAIClient:
    """Chat completions against one endpoint, with :class:`RetryPolicy` retries and a concurrency limit.

    Args:
        base_url: the server's ``/v1`` URL; None for OpenAI's.
        api_key: the key (see :func:`resolve_api_key`).
        retry: the retry policy.
        concurrency: HTTP calls in flight at once to this endpoint through this client (waits between
            retries do not hold a slot).
        rng: the source of backoff jitter.
        sleep: how to wait (tests pass a recorder).
        clock: the current time, for HTTP-date ``Retry-After`` values (tests pass a fixed one).
        purpose: what the calls are for, in messages (``"judge"``, ``"model"``).
    """

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str,
        retry: RetryPolicy,
        concurrency: int,
        rng: np.random.Generator,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        purpose: str = "model",
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"--concurrency must be >= 1, got {concurrency}")
        try:
            import openai
        except ImportError as exc:
            raise MissingDependencyError("openai", "pip install 'qlora-eval[openai]'", f"an openai: {purpose}") from exc
        self._openai = openai
        self.base_url = base_url
        self.retry = retry
        self.purpose = purpose
        self._rng = rng
        self._rng_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)
        self._sleep = sleep
        self._clock = clock
        # Retries are ours (one policy, one message), so the client's are off.
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=retry.timeout_s)

    @property
    def endpoint(self) -> str:
        return self.base_url or OPENAI_API_URL

    def chat(self, model: str, messages: Sequence[Mapping[str, str]], **params: Any) -> ChatReply:
        """One chat completion, retried per the policy.

        Args:
            model: the model name sent to the server.
            messages: ``[{"role": ..., "content": ...}, ...]``.
            **params: more request fields (``temperature``, ``max_tokens``, ``top_p``, ``seed``, ``stop``).

        Raises:
            BackendError: an error no retry fixes (bad key, unknown model, rejected request; a malformed reply
                when the policy does not retry those).
            RetriesExhausted: every attempt failed with a retryable error.
        """

        def create(client: Any) -> Any:
            response = client.chat.completions.create(
                model=model, messages=list(messages), timeout=self.retry.timeout_s, **params
            )
            return self._reply(response)

        (text, prompt, completion), attempts = self._run(f"the request for model {model!r}", create)
        return ChatReply(text, prompt, completion, attempts)

    def call(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run ``fn(openai_client)`` under the same policy as :meth:`chat` (for other endpoints: files, batches).

        Args:
            what: the call in words, for messages (``"the batch upload"``).
            fn: makes one HTTP call with the ``openai.OpenAI`` client it gets and returns its result; it may raise
                :class:`MalformedResponse` for a reply it cannot use.

        Raises:
            BackendError, RetriesExhausted: as for :meth:`chat`.
        """
        return self._run(what, fn)[0]

    def _run(self, what: str, fn: Callable[[Any], T]) -> tuple[T, int]:
        """``fn``'s result and the attempts it took."""
        openai = self._openai
        last_error, last_exc = "no attempt was made", None
        for attempt in range(1, self.retry.max_attempts + 1):
            wait_s = self._backoff(attempt)
            try:
                with self._slots:
                    return fn(self._client), attempt
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise BackendError(
                    f"the {self.purpose} server {self.endpoint} refused the API key (HTTP {exc.status_code}): "
                    f"{exc.message}; check OPENAI_API_KEY"
                ) from exc
            except openai.APIStatusError as exc:
                if exc.status_code not in RETRYABLE_STATUSES and exc.status_code < 500:
                    raise BackendError(
                        f"the {self.purpose} server {self.endpoint} rejected {what} (HTTP {exc.status_code}): "
                        f"{exc.message}; check the model name, OPENAI_API_KEY and base_url"
                    ) from exc
                last_error, last_exc = f"HTTP {exc.status_code}: {exc.message}", exc
                asked = retry_after_s(exc.response.headers, self._clock())
                if asked is not None:
                    # The server knows when it will accept us again; waiting less only earns another refusal.
                    wait_s = max(wait_s, min(asked, RETRY_AFTER_MAX_S))
            except openai.APITimeoutError as exc:
                last_error, last_exc = f"timed out after {self.retry.timeout_s:g} s", exc
            except openai.APIConnectionError as exc:
                last_error, last_exc = f"cannot connect to {self.endpoint}: {exc}", exc
            except (ValueError, openai.APIResponseValidationError, MalformedResponse) as exc:
                if not self.retry.retry_malformed:
                    raise BackendError(
                        f"{self.endpoint} sent an unusable reply to {what}: {type(exc).__name__}: {exc}"
                    ) from exc
                last_error, last_exc = f"malformed response: {exc}", exc
            if attempt < self.retry.max_attempts:
                log.warning(
                    "%s call to %s failed (%s); retry %d/%d in %.2f s",
                    self.purpose,
                    self.endpoint,
                    last_error,
                    attempt,
                    self.retry.max_attempts - 1,
                    wait_s,
                )
                self._sleep(wait_s)
        raise RetriesExhausted(
            f"{last_error} (gave up after {self.retry.max_attempts} attempts)", self.retry.max_attempts, last_exc
        )

    def close(self) -> None:
        self._client.close()

    def _backoff(self, attempt: int) -> float:
        with self._rng_lock:  # numpy generators are not thread-safe
            jitter = float(self._rng.random())
        return self.retry.backoff_s(attempt, jitter)

    @staticmethod
    def _reply(response: Any) -> tuple[str, int | None, int | None]:
        """(text, prompt tokens, completion tokens) of a completion; usage None when the server sent none."""
        try:
            text = response.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as exc:
            raise MalformedResponse(f"no choices[0].message.content in {str(response)[:200]!r}") from exc
        if not isinstance(text, str):
            raise MalformedResponse(f"choices[0].message.content is {type(text).__name__}, not text")
        usage = getattr(response, "usage", None)
        prompt = getattr(usage, "prompt_tokens", None)
        completion = getattr(usage, "completion_tokens", None)
        if prompt is None or completion is None:
            return text, None, None
        return text, int(prompt), int(completion)

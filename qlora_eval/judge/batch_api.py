"""The Batch API calls the batch judge makes, through the one OpenAI client (:mod:`qlora_eval.models.openai_client`).

Uploads, status polls, listings and downloads are retried under the client's policy (they are safe to
repeat: a second upload of a file costs nothing). Creating a batch is made exactly once per call and never
retried here: after a timeout we cannot know whether the batch exists, and a second one would pay for every
request twice. The caller records what it knows and finds out later by listing batches (each carries our
submission id in its metadata).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from qlora_eval.models.openai_client import MalformedResponse, OpenAIClient, RetryPolicy, resolve_api_key

#: Batch statuses after which nothing changes any more.
TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
#: The metadata key holding our submission id on every batch we create.
SUBMISSION_KEY = "qlora_eval_submission"


@dataclass(frozen=True)
class RemoteBatch:
    """What the server says about one batch.

    Attributes:
        batch_id, status, input_file_id: the batch, its status and its input file.
        output_file_id, error_file_id: result files, once the batch has ended (either may be None).
        submission_id: our id from the batch's metadata (None for batches not made by qlora-eval).
        created_at: Unix seconds.
        total, completed, failed: request counts.
    """

    batch_id: str
    status: str
    input_file_id: str
    output_file_id: str | None
    error_file_id: str | None
    submission_id: str | None
    created_at: int
    total: int
    completed: int
    failed: int

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL_STATUSES


class BatchAPI(Protocol):
    """The five Batch API operations, as the batch judge needs them."""

    endpoint: str

    def upload(self, name: str, content: bytes) -> str:
        """Upload a JSONL input file (purpose ``batch``); returns its file id."""

    def create(self, file_id: str, submission_id: str) -> RemoteBatch:
        """Create a batch over an uploaded file: one attempt, never retried (see the module docstring)."""

    def retrieve(self, batch_id: str) -> RemoteBatch:
        """The batch's current state."""

    def recent(self, created_since: int) -> list[RemoteBatch]:
        """Batches created at or after ``created_since`` (Unix seconds), newest first."""

    def content(self, file_id: str) -> str:
        """The text of an output or error file."""

    def close(self) -> None:
        """Release the connections."""


class OpenAIBatchAPI:
    """:class:`BatchAPI` against OpenAI (or any server implementing the Batch API).

    Args:
        base_url: the ``/v1`` URL; None for OpenAI's.
        retry: the retry policy of the safe-to-repeat calls.
        rng: the backoff jitter's source.
        sleep: how to wait between retries (tests pass a recorder).
    """

    def __init__(
        self,
        base_url: str | None,
        *,
        retry: RetryPolicy,
        rng: np.random.Generator,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        api_key = resolve_api_key(
            None,
            base_url,
            keyless_local=True,
            missing_hint="the Batch API needs an API key: export OPENAI_API_KEY=...",
        )
        extra: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
        self._client = OpenAIClient(
            base_url=base_url, api_key=api_key, retry=retry, concurrency=4, rng=rng, purpose="batch", **extra
        )
        # Same client code, one attempt: batch creation must never be repeated blindly.
        self._once = OpenAIClient(
            base_url=base_url,
            api_key=api_key,
            retry=replace(retry, max_attempts=1),
            concurrency=1,
            rng=rng,
            purpose="batch",
            **extra,
        )
        self.endpoint = self._client.endpoint

    def upload(self, name: str, content: bytes) -> str:
        result = self._client.call(
            "the batch input upload", lambda c: c.files.create(file=(name, content), purpose="batch")
        )
        return str(result.id)

    def create(self, file_id: str, submission_id: str) -> RemoteBatch:
        result = self._once.call(
            "the batch creation",
            lambda c: c.batches.create(
                input_file_id=file_id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={SUBMISSION_KEY: submission_id},
            ),
        )
        return _remote(result)

    def retrieve(self, batch_id: str) -> RemoteBatch:
        return _remote(self._client.call(f"the status poll of {batch_id}", lambda c: c.batches.retrieve(batch_id)))

    def recent(self, created_since: int) -> list[RemoteBatch]:
        found: list[RemoteBatch] = []
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 100} if after is None else {"limit": 100, "after": after}
            page = self._client.call("the batch listing", _lister(kwargs))
            batches = [_remote(b) for b in page.data]
            found.extend(b for b in batches if b.created_at >= created_since)
            if not batches or not page.has_more or batches[-1].created_at < created_since:
                return found
            after = batches[-1].batch_id

    def content(self, file_id: str) -> str:
        return str(self._client.call(f"the download of {file_id}", lambda c: c.files.content(file_id).text))

    def close(self) -> None:
        self._client.close()
        self._once.close()


def _lister(kwargs: dict[str, Any]) -> Callable[[Any], Any]:
    """One page of ``batches.list`` (a named function: a lambda in the loop would share ``kwargs``)."""
    return lambda client: client.batches.list(**kwargs)


def _remote(batch: Any) -> RemoteBatch:
    try:
        counts = batch.request_counts
        metadata = batch.metadata or {}
        return RemoteBatch(
            batch_id=str(batch.id),
            status=str(batch.status),
            input_file_id=str(batch.input_file_id),
            output_file_id=batch.output_file_id,
            error_file_id=batch.error_file_id,
            submission_id=metadata.get(SUBMISSION_KEY),
            created_at=int(batch.created_at),
            total=int(counts.total) if counts else 0,
            completed=int(counts.completed) if counts else 0,
            failed=int(counts.failed) if counts else 0,
        )
    except (AttributeError, TypeError, ValueError) as exc:
        raise MalformedResponse(f"not a batch object: {str(batch)[:200]!r}") from exc

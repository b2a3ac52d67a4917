"""Judging through the OpenAI Batch API: submit planned calls, later collect the verdicts.

Nothing paid for is lost and no key is submitted twice, wherever a process is killed:

1. :func:`submit` records the intent (submission id + every key, state ``intent``) *before* uploading; from
   then on the keys are in flight and planning leaves them out. Then it uploads the JSONL and records the
   file id (``uploaded``), creates the batch with the submission id in its metadata and records the batch
   id (``submitted``).
2. :func:`reconcile` settles submissions a killed process left behind: ``intent`` (no file id recorded, so
   no batch can exist: batches are only created after the file id is stored) becomes ``abandoned``;
   ``uploaded`` is looked up in the server's batch list by its submission id: found, it becomes
   ``submitted``; not found, ``abandoned``. Abandoned keys are planned again.
3. :func:`collect` polls every submitted batch; an ended one (completed, expired, failed, cancelled) has its
   output and error files downloaded and every verdict stored, every failure recorded, and the submission
   marked ``collected`` in one transaction. Failed keys are then free and the next submit plans them again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qlora_eval.errors import BackendError
from qlora_eval.judge.base import JudgeRequest
from qlora_eval.judge.batch_api import BatchAPI, RemoteBatch
from qlora_eval.judge.batch_format import (
    BatchResult,
    identity_of,
    input_jsonl,
    item_for,
    judgment_from,
    merge_results,
    parse_result_file,
)
from qlora_eval.judge.openai_judge import estimate_call_usd
from qlora_eval.judge.pricing import Price
from qlora_eval.judge.tokens import token_counter
from qlora_eval.models.openai_client import MalformedResponse, RetriesExhausted
from qlora_eval.store import BatchSubmission, Store, SubmissionState
from qlora_eval.types import Judgment, Verdict

log = logging.getLogger(__name__)

#: The Batch API's limit of requests per input file.
MAX_REQUESTS_PER_BATCH = 50_000
#: How far before a submission's recorded time the server's batch list is searched (clock skew).
_LISTING_SLACK_S = 3600


@dataclass(frozen=True)
class BatchJob:
    """What to submit and how.

    Attributes:
        judge_id: recorded with every judgment (``openai:gpt-4o``).
        model, temperature, max_tokens: the request body's fields.
        settings: the judge settings (part of each key; identical to a synchronous run's).
        price: the Batch API price (None when the table has none: estimates count 0).
        max_requests: requests per batch (the API allows 50,000).
    """

    judge_id: str
    model: str
    temperature: float
    max_tokens: int
    settings: dict[str, Any]
    price: Price | None
    max_requests: int = MAX_REQUESTS_PER_BATCH

    def __post_init__(self) -> None:
        if not 1 <= self.max_requests <= MAX_REQUESTS_PER_BATCH:
            raise ValueError(f"requests per batch must be in 1..{MAX_REQUESTS_PER_BATCH}, got {self.max_requests}")


@dataclass(frozen=True)
class SubmitSummary:
    """What :func:`submit` did.

    Attributes:
        batches: batch ids created.
        submitted: requests in those batches.
        unconfirmed: requests whose batch creation gave no answer (settled by the next reconcile).
        not_started: requests left out by the budget.
        estimated_usd: the estimate (batch prices, every reply at max_tokens) of what was submitted.
    """

    batches: list[str]
    submitted: int
    unconfirmed: int
    not_started: int
    estimated_usd: float


@dataclass
class CollectSummary:
    """What :func:`reconcile` and :func:`collect` found.

    Attributes:
        recovered: submissions whose batch a killed process created but never recorded (found by listing).
        abandoned: submissions with no batch (their keys are planned again).
        collected: batches whose results were stored now.
        pending: (batch id, status, completed, total) of batches still running.
        new: judgments stored now; invalid: of them, how many hold no verdict.
        failed: requests that ended without a verdict (recorded; planned again).
        unreadable: result-file lines that could not be read.
        cost_usd: dollars the stored judgments cost (batch prices, the server's usage).
    """

    recovered: int = 0
    abandoned: int = 0
    collected: int = 0
    pending: list[tuple[str, str, int, int]] = field(default_factory=list)
    new: int = 0
    invalid: int = 0
    failed: int = 0
    unreadable: int = 0
    cost_usd: float = 0.0


def without_in_flight(store: Store, requests: Sequence[JudgeRequest]) -> tuple[list[JudgeRequest], int]:
    """The requests whose keys are in no open batch, and how many were left out."""
    busy = store.in_flight_keys()
    kept = [r for r in requests if r.key not in busy]
    return kept, len(requests) - len(kept)


def estimate_usd(requests: Sequence[JudgeRequest], job: BatchJob) -> float:
    """The batch-price estimate of ``requests`` (the prompt estimate plus a full ``max_tokens`` reply each)."""
    tokens = token_counter(job.model)
    return sum(estimate_call_usd(job.price, r.messages, job.max_tokens, tokens) for r in requests)


def submit(
    store: Store,
    api: BatchAPI,
    requests: Sequence[JudgeRequest],
    job: BatchJob,
    *,
    budget_usd: float | None = None,
    run_id: int | None = None,
) -> SubmitSummary:
    """Submit ``requests`` (none of them stored or in flight) as batches; returns without waiting.

    Args:
        store: where the submissions are recorded.
        api: the Batch API.
        requests: the calls (from the plan, minus :func:`without_in_flight`).
        job: model, sampling, price.
        budget_usd: submit only the leading requests whose estimates fit in this many dollars.
        run_id: the store run.

    Raises:
        StoreError: a key is already in an open batch (the caller skipped :func:`without_in_flight`).
        BackendError: the server refused the upload or the batch (bad key, bad request).
    """
    chosen: list[JudgeRequest] = []
    spent = 0.0
    for request in requests:
        cost = estimate_call_usd(job.price, request.messages, job.max_tokens, token_counter(job.model))
        if budget_usd is not None and spent + cost > budget_usd:
            break
        chosen.append(request)
        spent += cost
    created: list[str] = []
    submitted = unconfirmed = 0
    for start in range(0, len(chosen), job.max_requests):
        chunk = chosen[start : start + job.max_requests]
        batch = _submit_one(store, api, chunk, job, run_id)
        if batch is None:
            unconfirmed += len(chunk)
        else:
            created.append(batch)
            submitted += len(chunk)
    return SubmitSummary(created, submitted, unconfirmed, len(requests) - len(chosen), spent)


def _submit_one(
    store: Store, api: BatchAPI, chunk: Sequence[JudgeRequest], job: BatchJob, run_id: int | None
) -> str | None:
    """One batch: the batch id, or None when creating it gave no answer (left ``uploaded``)."""
    submission_id = uuid.uuid4().hex
    items = [item_for(r, job.judge_id, job.settings) for r in chunk]
    store.add_batch_submission(submission_id, judge=job.judge_id, endpoint=api.endpoint, items=items, run_id=run_id)
    content = input_jsonl(chunk, model=job.model, temperature=job.temperature, max_tokens=job.max_tokens)
    try:
        file_id = api.upload(f"qlora-eval-{submission_id}.jsonl", content)
    except (BackendError, RetriesExhausted) as exc:
        store.abandon_batch_submission(submission_id, f"upload failed: {exc}")  # no file id: no batch
        raise _backend(exc) from exc
    store.set_batch_file(submission_id, file_id)
    try:
        remote = api.create(file_id, submission_id)
    except BackendError:
        # The server refused the batch (4xx): it does not exist.
        store.abandon_batch_submission(submission_id, "the server refused the batch")
        raise
    except (RetriesExhausted, MalformedResponse) as exc:
        # No answer: the batch may or may not exist. Stay "uploaded"; reconcile decides by listing.
        log.warning("creating batch for submission %s gave no answer (%s); will reconcile", submission_id, exc)
        return None
    store.set_batch_created(submission_id, remote.batch_id, remote.status)
    log.info("batch %s submitted: %d requests", remote.batch_id, len(chunk))
    return remote.batch_id


def reconcile(store: Store, api: BatchAPI, summary: CollectSummary) -> None:
    """Settle the ``intent`` and ``uploaded`` submissions of this endpoint that a killed process left."""
    open_ = [s for s in store.batch_submissions(open_only=True) if s.endpoint == api.endpoint]
    unsure = [s for s in open_ if s.state in (SubmissionState.INTENT, SubmissionState.UPLOADED)]
    if not unsure:
        return
    listed: list[RemoteBatch] | None = None
    for sub in unsure:
        if sub.state is SubmissionState.INTENT:
            store.abandon_batch_submission(sub.submission_id, "no input file was recorded, so no batch was created")
            summary.abandoned += 1
            continue
        if listed is None:
            since = min(_unix(s.created_at) for s in unsure) - _LISTING_SLACK_S
            listed = api.recent(since)
        match = [b for b in listed if b.submission_id == sub.submission_id or b.input_file_id == sub.file_id]
        if match:
            store.set_batch_created(sub.submission_id, match[0].batch_id, match[0].status)
            summary.recovered += 1
        else:
            store.abandon_batch_submission(sub.submission_id, "no batch with this submission id on the server")
            summary.abandoned += 1


def collect(
    store: Store,
    api: BatchAPI,
    price_of: Callable[[str], Price | None],
    summary: CollectSummary,
    *,
    run_id: int | None = None,
) -> None:
    """Poll the submitted batches of this endpoint; store the results of those that ended.

    Args:
        store: the store.
        api: the Batch API.
        price_of: model name -> its Batch API price (None: cost counted as 0).
        summary: counts are added here.
        run_id: the store run the judgments belong to.
    """
    for sub in store.batch_submissions(open_only=True):
        if sub.endpoint != api.endpoint or sub.state is not SubmissionState.SUBMITTED or sub.batch_id is None:
            continue
        remote = api.retrieve(sub.batch_id)
        if not remote.ended:
            if remote.status != sub.batch_status:
                store.set_batch_status(sub.submission_id, remote.status)
            summary.pending.append((remote.batch_id, remote.status, remote.completed, remote.total))
            continue
        _collect_one(store, api, sub, remote, price_of, summary, run_id)


def _collect_one(
    store: Store,
    api: BatchAPI,
    sub: BatchSubmission,
    remote: RemoteBatch,
    price_of: Callable[[str], Price | None],
    summary: CollectSummary,
    run_id: int | None,
) -> None:
    files = [parse_result_file(api.content(f), f) for f in (remote.output_file_id, remote.error_file_id) if f]
    results = merge_results(files)
    judgments: list[Judgment] = []
    failures: list[tuple[str, Judgment, str]] = []
    for item in store.batch_items(sub.submission_id):
        result = results.get(item.judgment_key)
        price = price_of(str(item.request["settings"].get("model", "")))
        if result is not None and result.text is not None:
            judgments.append(judgment_from(item, result, price))
            continue
        error = _error_of(result, remote)
        failures.append((item.judgment_key, identity_of(item), error))
    invalid = sum(j.verdict is Verdict.INVALID for j in judgments)
    unreadable = sum(f.unreadable for f in files)
    cost = sum(j.cost_usd for j in judgments)
    counts = {
        "status": remote.status,
        "judgments": len(judgments),
        "invalid": invalid,
        "failed": len(failures),
        "unreadable_lines": unreadable,
        "cost_usd": round(cost, 6),
    }
    with store.atomic():  # verdicts, failures and "collected" land together or not at all
        new = store.add_judgments(judgments, run_id=run_id)
        for key, placeholder, error in failures:
            store.add_judge_failure(key, placeholder, error, 1, run_id=run_id)
        store.finish_batch_submission(sub.submission_id, remote.status, counts)
    summary.collected += 1
    summary.new += new
    summary.invalid += invalid
    summary.failed += len(failures)
    summary.unreadable += unreadable
    summary.cost_usd += cost
    log.info("batch %s (%s): %d judgments, %d failed", remote.batch_id, remote.status, len(judgments), len(failures))


def _error_of(result: BatchResult | None, remote: RemoteBatch) -> str:
    if result is not None and result.error is not None:
        return result.error
    return f"no result for this request in batch {remote.batch_id} (status {remote.status})"


def _unix(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def _backend(exc: Exception) -> BackendError:
    return exc if isinstance(exc, BackendError) else BackendError(f"batch upload failed: {exc}")

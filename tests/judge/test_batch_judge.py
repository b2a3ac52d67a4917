"""Batch judging against the fake Batch API server: partial failures, expiry, slow completion, kills, resume.

The fake records every custom_id of every batch it created; each test checks how often each key was
submitted, so "never submitted twice" (except after a recorded failure) is proved, not assumed.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qlora_eval.judge.batch_api import BatchAPI, OpenAIBatchAPI, RemoteBatch
from qlora_eval.judge.batch_format import NO_REASK_NOTE
from qlora_eval.judge.batch_session import BatchRunSummary, batch_status, run_batch
from qlora_eval.judge.options import JudgeOptions
from qlora_eval.judge.plan import JudgePlan, latest_answers
from qlora_eval.judge.pricing import load_prices
from qlora_eval.judge.session import plan
from qlora_eval.judge.spec import parse_judge_spec
from qlora_eval.judge.templates import TemplateStyle, parse_verdict_in_style
from qlora_eval.models.openai_client import RetryPolicy
from qlora_eval.store import BatchItem, Store, SubmissionState
from qlora_eval.types import Order, Verdict
from tests.judge.fake_batch_server import BatchBehaviour, FakeBatchServer

FAST = RetryPolicy(max_attempts=3, timeout_s=5.0, backoff_base_s=0.0, backoff_max_s=0.0)
OPTIONS = JudgeOptions(retry=FAST, max_tokens=64)
MODELS = ["alpha", "beta", "gamma"]  # 3 prompts x 3 pairs x 2 orders = 18 calls


class Killed(BaseException):
    """Stands for the process dying at one exact point (like SIGKILL, nothing after it runs)."""


class KillAt:
    """A BatchAPI that dies at a chosen point of a chosen operation (once), then behaves."""

    def __init__(self, inner: BatchAPI, op: str, after: bool) -> None:
        self.inner, self.op, self.after = inner, op, after
        self.endpoint = inner.endpoint
        self.fired = False

    def __getattr__(self, name: str) -> Callable[..., Any]:
        real = getattr(self.inner, name)
        if name != self.op:
            return real  # type: ignore[no-any-return]

        def wrapped(*args: Any) -> Any:
            if self.fired:
                return real(*args)
            self.fired = True
            if not self.after:
                raise Killed(f"killed before {name}")
            real(*args)
            raise Killed(f"killed after {name}, before its result was recorded")

        return wrapped


def _spec(fake: FakeBatchServer | None) -> Any:
    url = fake.base_url if fake else "http://127.0.0.1:9/v1"  # the key does not depend on the URL
    return parse_judge_spec(f"openai:gpt-4o?base_url={url}")


def _plan(store: Store, fake: FakeBatchServer | None, options: JudgeOptions = OPTIONS) -> JudgePlan:
    prompts = store.prompts("t")
    answers = latest_answers(store.answers(prompt_set="t"), prompts)
    return plan(store, spec=_spec(fake), options=options, prompts=prompts, answers=answers, models=MODELS)


def _keys(db: Path) -> list[str]:
    with Store(db) as store:
        return [r.key for r in _plan(store, None).requests]


def _factory(wrap: Callable[[BatchAPI], BatchAPI] | None = None) -> Callable[[str | None], BatchAPI]:
    def make(base_url: str | None) -> BatchAPI:
        api: BatchAPI = OpenAIBatchAPI(base_url, retry=FAST, rng=np.random.default_rng(0))
        return wrap(api) if wrap else api

    return make


def _run(db: Path, fake: FakeBatchServer, options: JudgeOptions = OPTIONS, **kw: Any) -> BatchRunSummary:
    with Store(db) as store:
        job = _plan(store, fake, options)
        return run_batch(store, job, spec=_spec(fake), options=options, api_factory=_factory(kw.get("wrap")))


def _status(db: Path, wrap: Callable[[BatchAPI], BatchAPI] | None = None) -> BatchRunSummary:
    with Store(db) as store:
        return batch_status(store, options=OPTIONS, api_factory=_factory(wrap))


def _times_submitted(fake: FakeBatchServer) -> collections.Counter[str]:
    return collections.Counter(fake.submitted)


@pytest.fixture
def server() -> Iterator[FakeBatchServer]:
    with FakeBatchServer() as fake:
        yield fake


def test_slow_batch_is_polled_then_collected_once_with_the_servers_usage(db: Path) -> None:
    with FakeBatchServer([BatchBehaviour(polls_in_progress=2)]) as fake:
        first = _run(db, fake)
        assert first.submitted is not None and first.submitted.submitted == 18
        assert (first.in_flight, first.stored) == (18, 0)
        second = _run(db, fake)  # still in progress: polls, submits nothing
        assert second.collected.pending[0][1] == "in_progress"
        assert second.submitted is not None and second.submitted.submitted == 0
        assert _status(db).collected.pending  # the second poll: still running
        third = _status(db)
        assert (third.collected.collected, third.collected.new, third.in_flight) == (1, 18, 0)
        fourth = _run(db, fake)
        assert fourth.complete and fourth.submitted is not None and fourth.submitted.submitted == 0
        assert set(_times_submitted(fake).values()) == {1} and len(fake.submitted) == 18
        assert fake.calls["POST /batches"] == 1
    price = load_prices().get_batch("gpt-4o")
    assert price is not None
    with Store(db) as store:
        judgments = store.judgments(judges=["openai:gpt-4o"])
    assert len(judgments) == 18
    for stored in judgments:
        j = stored.judgment
        prompt_tokens, completion_tokens = fake.usage_for(stored.key)
        assert (j.prompt_tokens, j.completion_tokens) == (prompt_tokens, completion_tokens)
        assert j.cost_usd == pytest.approx(price.cost(prompt_tokens, completion_tokens))
        # The fake prefers the longer answer: gamma > beta > alpha.
        winner = j.model_a if j.verdict is Verdict.A else j.model_b
        assert winner == max(j.model_a, j.model_b, key=MODELS.index)


def test_partial_failures_are_recorded_and_only_they_are_resubmitted(db: Path) -> None:
    keys = _keys(db)
    with FakeBatchServer([BatchBehaviour(fail_500={keys[0]}, fail_error={keys[1]})]) as fake:
        _run(db, fake)
        collected = _status(db)
        assert (collected.collected.new, collected.collected.failed) == (16, 2)
        with Store(db) as store:
            failures = store.judge_failures()
        assert sorted(f.judgment_key for f in failures) == sorted(keys[:2])
        assert any("HTTP 500" in f.error for f in failures) and any("server_error" in f.error for f in failures)
        again = _run(db, fake)
        assert again.submitted is not None and again.submitted.submitted == 2
        done = _status(db)
        assert done.collected.new == 2
        final = _run(db, fake)
        assert final.complete
    counts = _times_submitted(fake)
    assert {k: n for k, n in counts.items() if n > 1} == {keys[0]: 2, keys[1]: 2}
    assert len(counts) == 18 and fake.calls["POST /batches"] == 2


def test_expired_batch_keeps_what_ran_and_resubmits_the_rest(db: Path) -> None:
    with FakeBatchServer([BatchBehaviour(expire_after=5)]) as fake:
        _run(db, fake)
        status = _status(db)
        assert (status.collected.new, status.collected.failed) == (5, 13)
        with Store(db) as store:
            assert all("batch_expired" in f.error for f in store.judge_failures())
            assert store.batch_submissions()[0].batch_status == "expired"
        again = _run(db, fake)
        assert again.submitted is not None and again.submitted.submitted == 13
        _status(db)
        assert _run(db, fake).complete
    assert max(_times_submitted(fake).values()) == 2 and sum(_times_submitted(fake).values()) == 18 + 13


def test_rejected_batch_leaves_every_key_to_plan_again(db: Path) -> None:
    with FakeBatchServer([BatchBehaviour(reject=True)]) as fake:
        _run(db, fake)
        status = _status(db)
        assert (status.collected.collected, status.collected.failed, status.in_flight) == (1, 18, 0)
        _run(db, fake)
        _status(db)
        assert _run(db, fake).complete


def test_kill_before_upload_abandons_the_intent_and_uploads_nothing(db: Path, server: FakeBatchServer) -> None:
    with pytest.raises(Killed):
        _run(db, server, wrap=lambda api: KillAt(api, "upload", after=False))
    with Store(db) as store:
        assert store.batch_submissions()[0].state is SubmissionState.INTENT
        assert len(store.in_flight_keys()) == 18  # reserved: a concurrent planner would leave them out
    assert server.uploaded == [] and server.submitted == []
    resumed = _run(db, server)
    assert resumed.collected.abandoned == 1
    assert resumed.submitted is not None and resumed.submitted.submitted == 18
    assert len(server.submitted) == 18 and len(set(server.submitted)) == 18


def test_kill_between_upload_and_create_resubmits_once(db: Path, server: FakeBatchServer) -> None:
    with pytest.raises(Killed):
        _run(db, server, wrap=lambda api: KillAt(api, "create", after=False))
    with Store(db) as store:
        assert store.batch_submissions()[0].state is SubmissionState.UPLOADED
    assert server.submitted == [] and len(server.uploaded) == 18
    resumed = _run(db, server)
    assert resumed.collected.abandoned == 1 and server.calls["GET /batches"] == 1  # looked before deciding
    _status(db)
    assert _run(db, server).complete
    assert len(server.submitted) == 18 and server.duplicates() == []


def test_kill_after_create_before_recording_finds_the_batch_and_never_resubmits(
    db: Path, server: FakeBatchServer
) -> None:
    with pytest.raises(Killed):
        _run(db, server, wrap=lambda api: KillAt(api, "create", after=True))
    with Store(db) as store:
        assert store.batch_submissions()[0].state is SubmissionState.UPLOADED  # the batch id never got stored
    assert len(server.submitted) == 18
    resumed = _run(db, server)
    assert resumed.collected.recovered == 1
    assert resumed.submitted is not None and resumed.submitted.submitted == 0
    _status(db)
    assert _run(db, server).complete
    assert len(server.submitted) == 18 and server.duplicates() == [] and server.calls["POST /batches"] == 1


def test_kill_while_collecting_stores_nothing_half_and_collects_all_later(db: Path) -> None:
    with FakeBatchServer([BatchBehaviour(fail_error=set())]) as fake:
        _run(db, fake)
        with pytest.raises(Killed):
            _status(db, wrap=lambda api: KillAt(api, "content", after=True))
        with Store(db) as store:
            assert store.judgments() == [] and len(store.in_flight_keys()) == 18
        assert _status(db).collected.new == 18
        assert _run(db, fake).complete
    assert len(fake.submitted) == 18 and fake.duplicates() == []


def test_create_failing_with_500_is_not_retried_blindly(db: Path) -> None:
    with FakeBatchServer(fail_create=1) as fake:
        first = _run(db, fake)
        assert first.submitted is not None and (first.submitted.submitted, first.submitted.unconfirmed) == (0, 18)
        assert fake.calls["POST /batches"] == 1  # one attempt: a retry after no answer could pay twice
        second = _run(db, fake)
        assert second.collected.abandoned == 1
        assert second.submitted is not None and second.submitted.submitted == 18
    assert len(fake.submitted) == 18 and fake.duplicates() == []


def test_budget_submits_only_what_fits_at_batch_prices(db: Path, server: FakeBatchServer) -> None:
    price = load_prices().get_batch("gpt-4o")
    assert price is not None
    with Store(db) as store:
        job = _plan(store, server)
    from qlora_eval.judge.openai_judge import estimate_call_usd
    from qlora_eval.judge.tokens import token_counter

    tokens = token_counter("gpt-4o")
    per_call = [estimate_call_usd(price, r.messages, OPTIONS.max_tokens, tokens) for r in job.requests]
    budget = sum(per_call[:5]) + per_call[5] / 2
    summary = _run(db, server, JudgeOptions(retry=FAST, max_tokens=64, budget_usd=budget))
    assert summary.submitted is not None
    assert (summary.submitted.submitted, summary.submitted.not_started) == (5, 13)
    assert summary.submitted.estimated_usd <= budget
    sync = load_prices().get("gpt-4o")
    assert sync is not None
    assert summary.submitted.estimated_usd == pytest.approx(
        sum(estimate_call_usd(sync, r.messages, 64, tokens) for r in job.requests[:5]) / 2
    )


def test_unparsable_reply_is_stored_invalid_with_its_text(db: Path) -> None:
    keys = _keys(db)
    with FakeBatchServer([BatchBehaviour(replies={keys[3]: "Both are fine, really."})]) as fake:
        _run(db, fake)
        status = _status(db)
    assert (status.collected.new, status.collected.invalid) == (18, 1)
    with Store(db) as store:
        invalid = [s for s in store.judgments() if s.judgment.verdict is Verdict.INVALID]
    assert [s.key for s in invalid] == [keys[3]]
    assert "Both are fine" in invalid[0].judgment.rationale and NO_REASK_NOTE in invalid[0].judgment.rationale


def test_batch_and_sync_keys_agree(db: Path, server: FakeBatchServer) -> None:
    """A verdict collected from a batch satisfies the synchronous plan (the same key): never paid twice."""
    _run(db, server)
    _status(db)
    with Store(db) as store:
        job = _plan(store, server)
        assert job.requests == [] and len(job.stored_keys) == 18
        orders = collections.Counter(s.judgment.order for s in store.judgments())
    assert orders == {Order.FORWARD: 9, Order.SWAPPED: 9}


def test_remote_batch_ended_states() -> None:
    base = dict(input_file_id="f", output_file_id=None, error_file_id=None, submission_id=None, created_at=0)
    counts = dict(total=1, completed=0, failed=0)
    assert RemoteBatch("b", "expired", **base, **counts).ended  # type: ignore[arg-type]
    assert not RemoteBatch("b", "finalizing", **base, **counts).ended  # type: ignore[arg-type]


def test_session_judge_with_batch_reports_in_flight_as_not_started(db: Path, server: FakeBatchServer) -> None:
    """The path the tournament takes: incomplete while batches run, complete once collected."""
    from qlora_eval.judge import session

    options = JudgeOptions(retry=FAST, max_tokens=64, batch=True)
    with Store(db) as store:
        first = session.judge(store, _plan(store, server, options), spec=_spec(server), options=options)
        assert (first.not_started, first.new, first.requests) == (18, 0, 18)
        second = session.judge(store, _plan(store, server, options), spec=_spec(server), options=options)
        assert (second.not_started, second.new, second.requests) == (0, 18, 0)
        assert second.failed == 0 and second.judgments == 18
    assert len(server.submitted) == 18


@pytest.mark.parametrize("style", list(TemplateStyle))
@pytest.mark.parametrize("reply", ["Assistant 1 is better.\n1", "Good.\n1.", "Good.\n**2**", "Equal.\n3", "Hm."])
def test_batch_replies_are_parsed_like_synchronous_ones_for_the_template_style(
    db: Path, style: TemplateStyle, reply: str
) -> None:
    """--judge-templates qlora-paper: the paper's int(last line) in batches too (it was our lenient parser)."""
    from qlora_eval.judge.batch_format import BatchResult, item_for, judgment_from

    with Store(db) as store:
        job = _plan(store, None)
    request = job.requests[0]
    request = dataclasses.replace(request, template=dataclasses.replace(request.template, style=style))
    spec = _spec(None)
    item = item_for(request, spec.judge_id, spec.settings(OPTIONS))
    stored = BatchItem(item.judgment_key, json.loads(json.dumps(item.request)))  # as the store gives it back
    judgment = judgment_from(stored, BatchResult(request.key, reply, 10, 3, None), None)
    assert judgment.verdict is request.template.parse_verdict(reply)


def test_paper_style_batch_reply_differs_from_our_reading() -> None:
    # the case that was wrong: the paper reads "1." as unparsable, our parser as a verdict for answer 1
    assert parse_verdict_in_style(TemplateStyle.QLORA_PAPER, "Good.\n1.") is Verdict.INVALID
    assert parse_verdict_in_style(TemplateStyle.QLORA_EVAL, "Good.\n1.") is Verdict.A


def test_retry_invalid_in_a_batch_stores_the_paid_retry(db: Path) -> None:
    """--batch --retry-invalid: the retry's item keeps {"retry": 1} so its verdict is stored under its own key.

    Before the fix the item held the judge's bare settings: collection rebuilt another key and raised
    "stored request is corrupt", so nothing of that batch was stored (and every later run failed the same way).
    """
    keys = _keys(db)
    retrying = JudgeOptions(retry=FAST, max_tokens=64, retry_invalid=True)
    with FakeBatchServer([BatchBehaviour(replies={keys[3]: "Both are fine, really."})]) as fake:
        _run(db, fake)
        assert _status(db).collected.invalid == 1
        with Store(db) as store:
            job = _plan(store, fake, retrying)
        assert [r.retry for r in job.requests] == [1]
        retry_key = job.requests[0].key
        assert retry_key != keys[3]
        _run(db, fake, retrying)  # submits the retry (the fake's default judge answers it validly)
        status = _status(db)
        assert (status.collected.new, status.collected.invalid) == (1, 0)
        assert _times_submitted(fake)[retry_key] == 1
        with Store(db) as store:
            stored = {s.key: s.judgment for s in store.judgments()}
            assert _plan(store, fake, retrying).requests == []  # nothing left to pay for
    assert len(stored) == 19
    assert stored[keys[3]].verdict is Verdict.INVALID  # the INVALID one stays
    assert stored[retry_key].verdict is not Verdict.INVALID
    assert stored[retry_key].settings.get("retry") == 1

"""The openai judge against a fault-injecting chat-completions server: HTTP call counts prove the behaviour."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from qlora_eval.errors import BackendError
from qlora_eval.judge.base import Budget
from qlora_eval.judge.openai_judge import OpenAIJudge, RetryPolicy
from qlora_eval.judge.plan import JudgePlan, latest_answers
from qlora_eval.judge.pricing import Price
from qlora_eval.judge.runner import JudgeRunSummary, run_judge
from qlora_eval.judge.session import JudgeOptions, plan
from qlora_eval.judge.spec import parse_judge_spec
from qlora_eval.store import Store
from qlora_eval.types import Order, Verdict
from tests.judge.conftest import MODELS
from tests.judge.fake_openai import FakeOpenAI

FAST_RETRY = RetryPolicy(max_attempts=3, timeout_s=5.0, backoff_base_s=0.01, backoff_max_s=0.05)


def _plan(store: Store, fake: FakeOpenAI, models: tuple[str, ...] = ("alpha", "beta")) -> JudgePlan:
    spec = parse_judge_spec(f"openai:fake-judge?base_url={fake.base_url}")
    prompts = store.prompts("t")
    answers = latest_answers(store.answers(prompt_set="t"), prompts)
    return plan(store, spec=spec, options=JudgeOptions(), prompts=prompts, answers=answers, models=list(models))


def _judge(
    fake: FakeOpenAI, *, retry: RetryPolicy = FAST_RETRY, price: Price | None = None, **kw: object
) -> OpenAIJudge:
    return OpenAIJudge(
        "fake-judge",
        base_url=fake.base_url,
        price=price,
        retry=retry,
        rng=np.random.default_rng(0),
        concurrency=int(kw.pop("concurrency", 1)),  # type: ignore[call-overload]
        sleep=kw.pop("sleep", time.sleep),  # type: ignore[arg-type]
    )


def _run(db: Path, fake: FakeOpenAI, budget: float | None = None, **kw: object) -> tuple[JudgeRunSummary, JudgePlan]:
    with Store(db) as store:
        job = _plan(store, fake)
        judge = _judge(fake, **kw)
        summary = run_judge(
            store, judge, job.requests, already_stored=len(job.stored_keys), budget=Budget(budget), progress=False
        )
    return summary, job


def test_judges_every_pair_in_both_orders_and_never_pays_twice(db: Path, fake: FakeOpenAI) -> None:
    summary, job = _run(db, fake)
    assert job.total == 3 * 2  # 3 prompts x 1 pair x 2 orders
    assert fake.calls == 6 and summary.new == 6 and summary.requests == 6
    with Store(db) as store:
        stored = store.judgments()
        assert sorted(s.key for s in stored) == sorted(r.key for r in job.requests)
        # the fake judge prefers the longer answer: beta (40 x) beats alpha (10 x) in both orders
        for s in stored:
            j = s.judgment
            assert j.verdict is (Verdict.A if j.model_a == "beta" else Verdict.B)
            assert j.order is (Order.FORWARD if j.model_a == "alpha" else Order.SWAPPED)
            assert j.template_hash and j.settings["model"] == "fake-judge" and j.rationale
        assert {s.judgment.template_hash for s in stored} == {r.template.sha256 for r in job.requests} and len(
            {r.template.name for r in job.requests}
        ) == 3
    again, job2 = _run(db, fake)
    assert fake.calls == 6, "a rerun must not call the judge again"
    assert job2.requests == [] and again.already_stored == 6 and again.new == 0


def test_429_honours_retry_after_and_5xx_timeouts_malformed_retry(db: Path, fake: FakeOpenAI) -> None:
    waits: list[float] = []
    fake.schedule = [("429", 2), "500", "malformed", ("timeout", 1.5)]
    retry = RetryPolicy(max_attempts=5, timeout_s=0.5, backoff_base_s=0.01, backoff_max_s=0.05)
    summary, _ = _run(db, fake, retry=retry, sleep=waits.append)
    # one request took 5 calls (429, 500, malformed, timeout, ok); the other five took one each
    assert fake.calls == 10 and summary.requests == 10
    assert summary.new == 6 and summary.failed == 0
    assert waits[0] == 2.0, "the wait after a 429 is the server's Retry-After"
    assert all(0.01 <= w <= 0.05 for w in waits[1:]) and len(waits) == 4


def test_backoff_grows_exponentially_with_jitter(db: Path, fake: FakeOpenAI) -> None:
    waits: list[float] = []
    fake.schedule = ["500"] * 4
    retry = RetryPolicy(max_attempts=5, timeout_s=5, backoff_base_s=1.0, backoff_max_s=100.0)
    _run(db, fake, retry=retry, sleep=waits.append)
    assert len(waits) == 4
    for n, wait in enumerate(waits):
        assert 2**n <= wait < 1.5 * 2**n


def test_failure_after_retry_budget_is_recorded_and_retried_next_run(db: Path, fake: FakeOpenAI) -> None:
    fake.schedule = ["500"] * 3  # exactly the first request's three attempts
    summary, _ = _run(db, fake)
    assert summary.failed == 1 and summary.new == 5 and fake.calls == 3 + 5
    with Store(db) as store:
        rows = store.judge_failures()
        assert len(rows) == 1
        assert "HTTP 500" in rows[0].error and "gave up after 3 attempts" in rows[0].error
        assert rows[0].attempts == 3 and rows[0].judge == "openai:fake-judge"
        assert store.counts()["judgments"] == 5
    again, job = _run(db, fake)
    assert len(job.requests) == 1 and again.new == 1 and fake.calls == 9


def test_unparsable_reply_is_reasked_once(db: Path, fake: FakeOpenAI) -> None:
    fake.schedule = [("unparsable", "Hmm, both are fine I guess."), ("ok", "2")]
    summary, _ = _run(db, fake)
    assert fake.calls == 7 and summary.reasked == 1 and summary.invalid == 0
    reask = fake.requests[1]["messages"]
    assert reask[-2] == {"role": "assistant", "content": "Hmm, both are fine I guess."}
    assert "1, 2 or 3" in reask[-1]["content"]
    with Store(db) as store:
        first = [s.judgment for s in store.judgments() if "re-asked" in s.judgment.rationale]
        assert len(first) == 1 and first[0].verdict is Verdict.B


def test_twice_unparsable_is_stored_invalid_with_raw_text(db: Path, fake: FakeOpenAI) -> None:
    fake.schedule = [("unparsable", "I refuse."), ("unparsable", "Still no.")]
    summary, _ = _run(db, fake)
    assert fake.calls == 7 and summary.invalid == 1 and summary.new == 6
    with Store(db) as store:
        invalid = [s.judgment for s in store.judgments() if s.judgment.verdict is Verdict.INVALID]
        assert len(invalid) == 1
        assert "I refuse." in invalid[0].rationale and "Still no." in invalid[0].rationale


def test_budget_stops_before_exceeding(db: Path, fake: FakeOpenAI) -> None:
    price = Price(1000.0, 1000.0)  # dollars per million tokens: ~$1.5 per call estimate with max_tokens 1024
    with Store(db) as store:
        job = _plan(store, fake)
        judge = _judge(fake, price=price)
        per_call = judge.estimate_usd(job.requests[0])
        limit = per_call * 1.3
        budget = Budget(limit)
        summary = run_judge(store, judge, job.requests, already_stored=0, budget=budget, progress=False)
    # estimates are upper bounds (a full --max-tokens reply), real replies are short: more than one call fits
    assert summary.stopped_by_budget and 2 <= fake.calls < 6
    assert summary.new == fake.calls and summary.not_started == 6 - fake.calls
    assert summary.cost_usd == pytest.approx(budget.spent_usd) and budget.reserved_usd == pytest.approx(0)
    assert summary.cost_usd <= limit, "never exceed the budget"
    assert summary.cost_usd + per_call > limit, "stop only when the next call could exceed it"


def test_refused_key_stops_the_run(db: Path, fake: FakeOpenAI) -> None:
    fake.schedule = ["401"]
    with pytest.raises(BackendError, match="refused the API key"):
        _run(db, fake)
    assert fake.calls == 1


def test_concurrency_limit(db: Path) -> None:
    with FakeOpenAI(delay_s=0.2) as slow, Store(db) as store:
        job = _plan(store, slow, models=MODELS)  # 3 pairs x 3 prompts x 2 orders = 18 calls
        judge = _judge(slow, concurrency=4)
        start = time.perf_counter()
        summary = run_judge(store, judge, job.requests, already_stored=0, budget=Budget(None), progress=False)
        elapsed = time.perf_counter() - start
    assert summary.new == 18 and slow.calls == 18
    assert slow.max_in_flight == 4
    assert elapsed < 18 * 0.2  # ran in parallel

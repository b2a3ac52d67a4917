"""Issue 14: a paid reply without a verdict whose re-ask fails or is refused by the budget is kept: stored as
INVALID with its raw text and cost, so the next run does not pay for it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlora_eval.judge.base import Budget
from qlora_eval.judge.pricing import Price
from qlora_eval.judge.runner import run_judge
from qlora_eval.store import Store
from qlora_eval.types import Verdict
from tests.judge.fake_openai import FakeOpenAI
from tests.judge.test_openai_judge import _judge, _plan, _run


def _invalid(db: Path) -> list:  # type: ignore[type-arg]
    with Store(db) as store:
        return [s.judgment for s in store.judgments() if s.judgment.verdict is Verdict.INVALID]


def test_failed_reask_keeps_the_paid_reply_as_invalid(db: Path, fake: FakeOpenAI) -> None:
    fake.schedule = [("unparsable", "I ponder at length."), "500", "500", "500"]  # the re-ask gives up after 3
    price = Price(1000.0, 2000.0)
    summary, _ = _run(db, fake, price=price)
    assert summary.failed == 0 and summary.new == 6 and summary.invalid == 1
    [invalid] = _invalid(db)
    assert invalid.rationale.startswith("I ponder at length.")
    assert "re-ask for the verdict line failed" in invalid.rationale
    assert invalid.cost_usd > 0 and invalid.prompt_tokens and invalid.completion_tokens
    assert summary.cost_usd == pytest.approx(sum(j.cost_usd for j in _all(db)))
    calls = fake.calls
    again, job = _run(db, fake, price=price)
    assert job.requests == [] and fake.calls == calls and again.cost_usd == 0, "the paid reply is not paid again"


def test_budget_refused_reask_keeps_the_paid_reply_as_invalid(db: Path, fake: FakeOpenAI) -> None:
    fake.schedule = [("unparsable", "Both have merits.")]
    price = Price(1000.0, 1000.0)
    with Store(db) as store:
        job = _plan(store, fake)
        judge = _judge(fake, price=price)
        first = job.requests[:1]
        budget = Budget(judge.estimate_usd(first[0]) * 1.2)  # the first call fits, its re-ask does not
        summary = run_judge(store, judge, first, already_stored=0, budget=budget, progress=False)
    assert fake.calls == 1 and summary.failed == 0 and summary.invalid == 1
    [invalid] = _invalid(db)
    assert "Both have merits." in invalid.rationale and "the budget ran out" in invalid.rationale
    assert invalid.cost_usd == pytest.approx(summary.cost_usd) and invalid.cost_usd > 0
    with Store(db) as store:
        assert job.requests[0].key not in [r.key for r in _plan(store, fake).requests]


def _all(db: Path) -> list:  # type: ignore[type-arg]
    with Store(db) as store:
        return [s.judgment for s in store.judgments()]

"""``judge --protocol relative`` against the fake chat server: a rejected call loses no other paid reply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qlora_eval.errors import BackendError
from qlora_eval.judge.options import JudgeOptions
from qlora_eval.judge.plan import latest_answers
from qlora_eval.judge.relative_judging import RelativePlan, plan_relative, run_relative
from qlora_eval.judge.session import templates_for
from qlora_eval.judge.spec import parse_judge_spec
from qlora_eval.models.openai_client import RetryPolicy
from qlora_eval.store import Store
from tests.judge.fake_openai import FakeOpenAI

FAST = RetryPolicy(max_attempts=2, timeout_s=5.0, backoff_base_s=0.0, backoff_max_s=0.0)
MODELS = ["alpha", "beta", "gamma"]  # reference alpha: 3 prompts x 2 models x 2 orders = 12 calls


def _scores(request: dict[str, Any]) -> str:
    return "8 6\nThe first answer is more complete."


def _plan(store: Store, url: str, options: JudgeOptions) -> tuple[Any, RelativePlan]:
    spec = parse_judge_spec(f"openai:judge-x?base_url={url}")
    prompts = store.prompts("t")
    answers = latest_answers(store.answers(prompt_set="t"), prompts)
    plan = plan_relative(
        store,
        spec=spec,
        options=options,
        prompts=prompts,
        answers=answers,
        models=MODELS,
        reference="alpha",
        templates=templates_for(options, protocol="relative"),
    )
    return spec, plan


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_rejected_call_keeps_every_other_paid_reply_and_a_rerun_pays_only_the_rest(
    db: Path, concurrency: int
) -> None:
    """One call answered HTTP 400 mid-run: every reply the server sent is stored, queued calls are not made.

    Before the fix ``pool.map`` queued every call: leaving the executor on the error waited for all of them (paid)
    and stored none of the replies after the failed one, so the rerun paid for them again.
    """
    options = JudgeOptions(retry=FAST, max_tokens=64, concurrency=concurrency)
    with FakeOpenAI(["ok", "ok", "ok", "400"], reply=_scores, delay_s=0.05) as fake:
        with Store(db) as store:
            spec, plan = _plan(store, fake.base_url, options)
            assert plan.total == 12 and len(plan.requests) == 12
            with pytest.raises(BackendError, match="HTTP 400"):
                run_relative(store, plan, spec=spec, options=options)
            stored = len(store.relative_judgments())
        first_calls = fake.calls
        assert fake.actions.count("400") == 1
        assert stored == fake.actions.count("ok")  # every paid reply is in the store
        assert first_calls < 12  # the queued calls were cancelled, not paid for
        with Store(db) as store:
            spec, plan = _plan(store, fake.base_url, options)
            assert len(plan.requests) == 12 - stored
            summary = run_relative(store, plan, spec=spec, options=options)
            assert (summary.new, summary.already_stored, summary.failed) == (12 - stored, stored, 0)
            assert len(store.relative_judgments()) == 12
        assert fake.calls - first_calls == 12 - stored  # the rerun paid only for the missing ones

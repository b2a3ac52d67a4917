"""The judge-kind registry: one table, nearest-name suggestions, one source of the key settings, key checks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from qlora_eval.errors import ConfigError, InternalError
from qlora_eval.judge.base import Budget, Judge, JudgeOutcome, JudgeRequest
from qlora_eval.judge.openai_judge import OpenAIJudge
from qlora_eval.judge.plan import latest_answers
from qlora_eval.judge.registry import JUDGE_KINDS, get_judge_kind, judge_grammar, parse_judge_spec
from qlora_eval.judge.runner import run_judge
from qlora_eval.judge.session import JudgeOptions, estimate_messages, plan
from qlora_eval.store import Store
from qlora_eval.types import Message, Role, Verdict


def test_every_kind_is_registered_once_under_its_name() -> None:
    assert {"openai", "local"} <= set(JUDGE_KINDS)
    assert all(name == kind.name for name, kind in JUDGE_KINDS.items())
    assert all(kind.grammar.startswith(f"{name}:") for name, kind in JUDGE_KINDS.items())
    assert all(kind.grammar in judge_grammar() for kind in JUDGE_KINDS.values())


@pytest.mark.parametrize(("typo", "nearest"), [("opnai", "openai"), ("openia", "openai"), ("locl", "local")])
def test_unknown_kind_suggests_the_nearest_name(typo: str, nearest: str) -> None:
    with pytest.raises(ConfigError, match=f"did you mean '{nearest}'"):
        get_judge_kind(typo)
    with pytest.raises(ConfigError, match=f"bad judge spec '{typo}:x'.*did you mean '{nearest}'"):
        parse_judge_spec(f"{typo}:x")


def test_far_off_kind_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known kinds: openai, local") as caught:
        get_judge_kind("zzzzzz")
    assert "did you mean" not in str(caught.value)


def test_each_kind_parses_its_own_specs() -> None:
    spec = parse_judge_spec("openai:gpt-4?base_url=http://127.0.0.1:1/v1")
    assert (spec.kind.name, spec.target, spec.base_url, spec.judge_id) == (
        "openai",
        "gpt-4",
        "http://127.0.0.1:1/v1",
        "openai:gpt-4",
    )
    local = parse_judge_spec("local:smollm2-135m")
    assert local.kind.runs_locally and not spec.kind.runs_locally and local.judge_id == "local:smollm2-135m"
    with pytest.raises(ConfigError, match="unknown options"):
        parse_judge_spec("openai:gpt-4?colour=red")


def test_estimates_go_through_the_kind() -> None:
    calls = [[Message(Role.USER, "x" * 400)]] * 3
    options = JudgeOptions(max_tokens=100)
    paid = estimate_messages(calls, parse_judge_spec("openai:gpt-4"), options)
    free = estimate_messages(calls, parse_judge_spec("local:smollm2-135m"), options)
    assert paid.calls == free.calls == 3 and paid.priced and paid.cost_usd > 0
    assert paid.max_completion_tokens == 300 and free.max_completion_tokens == 3 and free.cost_usd == 0.0


def test_the_judge_records_exactly_the_settings_the_plan_keyed(fake: Any) -> None:
    spec = parse_judge_spec(f"openai:fake-judge?base_url={fake.base_url}")
    options = JudgeOptions(temperature=0.3, max_tokens=77)
    judge = spec.kind.build(spec, options, None)
    try:
        assert judge.settings == spec.settings(options)
        assert isinstance(judge, OpenAIJudge) and judge.judge_id == spec.judge_id
    finally:
        judge.close()


class _DriftedJudge(Judge):
    """Answers every request but records settings other than the ones the plan keyed the request with."""

    judge_id = "openai:fake-judge"

    @property
    def settings(self) -> dict[str, Any]:
        return {"protocol": "pairwise-3class", "model": "fake-judge", "temperature": 0.9, "max_tokens": 1}

    def estimate_usd(self, request: JudgeRequest) -> float:
        return 0.0

    def judge_batch(self, requests: Sequence[JudgeRequest], budget: Budget) -> list[JudgeOutcome]:
        return [
            JudgeOutcome(r, r.judgment(self.judge_id, self.settings, Verdict.A, "drifted"), None, 1) for r in requests
        ]


def test_runner_refuses_a_judgment_whose_key_differs_from_its_request(db: Path) -> None:
    with Store(db) as store:
        prompts = store.prompts("t")
        answers = latest_answers(store.answers(prompt_set="t"), prompts)
        spec = parse_judge_spec("openai:fake-judge?base_url=http://127.0.0.1:1/v1")
        job = plan(store, spec=spec, options=JudgeOptions(), prompts=prompts, answers=answers, models=["alpha", "beta"])
        with pytest.raises(InternalError, match=r"differs from its request's key.*paid for again"):
            run_judge(store, _DriftedJudge(), job.requests, already_stored=0, budget=Budget(None), progress=False)
        assert store.counts()["judgments"] == 0, "a judgment under the wrong key must not be stored"

"""The synchronous judge's progress bar shows throughput (tokens per second) next to the spend."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from qlora_eval.judge.base import Budget
from qlora_eval.judge.openai_judge import OpenAIJudge
from qlora_eval.judge.plan import latest_answers
from qlora_eval.judge.pricing import Price
from qlora_eval.judge.runner import run_judge
from qlora_eval.judge.session import JudgeOptions, plan
from qlora_eval.judge.spec import parse_judge_spec
from qlora_eval.models.openai_client import RetryPolicy
from qlora_eval.store import Store
from tests.judge.fake_openai import FakeOpenAI


def test_progress_bar_shows_tokens_per_second(db: Path, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    spec = parse_judge_spec(f"openai:fake-judge?base_url={fake.base_url}")
    judge = OpenAIJudge(
        "fake-judge",
        base_url=fake.base_url,
        price=Price(1.0, 2.0),
        retry=RetryPolicy(max_attempts=2, timeout_s=5.0, backoff_base_s=0.0),
        rng=np.random.default_rng(0),
    )
    with Store(db) as store:
        prompts = store.prompts("t")
        answers = latest_answers(store.answers(prompt_set="t"), prompts)
        job = plan(store, spec=spec, options=JudgeOptions(), prompts=prompts, answers=answers, models=["alpha", "beta"])
        run_judge(store, judge, job.requests, already_stored=0, budget=Budget(None), progress=True)
    bar = capsys.readouterr().err
    rates = [int(m) for m in re.findall(r"tok_s=(\d+)", bar)]
    assert rates and rates[-1] > 0 and "usd=" in bar

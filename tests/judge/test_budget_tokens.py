"""Issue 14: ``--budget-usd`` is never overspent by the server's own count, also for code and non-Latin text,
because prompt tokens are counted with the model's tokenizer (tiktoken) or a conservative fallback, and the
whole ``max_tokens`` reply is reserved. The fake server counts usage by its own rule (``server_tokens``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qlora_eval.judge.base import Budget
from qlora_eval.judge.openai_judge import OpenAIJudge
from qlora_eval.judge.plan import latest_answers
from qlora_eval.judge.pricing import Price
from qlora_eval.judge.runner import run_judge
from qlora_eval.judge.session import JudgeOptions, estimate_messages, plan
from qlora_eval.judge.spec import parse_judge_spec
from qlora_eval.judge.tokens import conservative_tokens, token_counter
from qlora_eval.store import Store
from qlora_eval.types import Answer, Message, Prompt, Role
from tests.judge.fake_openai import FakeOpenAI, server_tokens
from tests.judge.test_openai_judge import FAST_RETRY

# Text that costs about a token per character: code symbols and Chinese (4 characters per token is far too low).
CODE = "if(a[i]!=b[j]){x+=f(*p)->q;}" * 12
CHINESE = "量化低秩适配器让大模型微调更省显存。" * 12


def _store(path: Path) -> None:
    prompts = [Prompt("t", str(i), (Message(Role.USER, f"Q{i}: {CODE}"),), "generic") for i in range(1, 5)]
    with Store(path) as store:
        store.add_prompts(prompts, set_version="1", set_hash="x")
        store.add_answers(
            [
                Answer(m, f"dummy:{m}", "t", p.prompt_id, p.content_hash, text, {"temperature": 0.7})
                for p in prompts
                for m, text in (("alpha", CHINESE), ("beta", CODE + "!"))
            ]
        )


def _run(db: Path, fake: FakeOpenAI, limit: float | None) -> tuple[list[str], dict[str, float], float, bool]:
    """Judge the store's plan with max_tokens 8 (the prompt dominates the cost); returns the plan's keys, each
    stored judgment's cost (the server's count), the total spent and whether the budget stopped the run."""
    with Store(db) as store:
        spec = parse_judge_spec(f"openai:fake-judge?base_url={fake.base_url}")
        prompts = store.prompts("t")
        answers = latest_answers(store.answers(prompt_set="t"), prompts)
        options = JudgeOptions(max_tokens=8)
        job = plan(store, spec=spec, options=options, prompts=prompts, answers=answers, models=["alpha", "beta"])
        judge = OpenAIJudge("fake-judge", base_url=fake.base_url, price=PRICE, max_tokens=8, concurrency=1,
                            retry=FAST_RETRY, rng=np.random.default_rng(0))  # fmt: skip
        summary = run_judge(store, judge, job.requests, already_stored=0, budget=Budget(limit), progress=False)
        costs = {s.key: s.judgment.cost_usd for s in store.judgments()}
    return [r.key for r in job.requests], costs, summary.cost_usd, summary.stopped_by_budget


PRICE = Price(1000.0, 1000.0)  # $ per million tokens


def test_budget_never_exceeded_by_the_servers_count(tmp_path: Path) -> None:
    probe, real = tmp_path / "probe.db", tmp_path / "real.db"
    _store(probe)
    _store(real)
    with FakeOpenAI() as fake:
        keys, costs, _, _ = _run(probe, fake, None)  # what each call really costs, as the server counts
        # Room for two calls and 60% of the third: a client that undercounts the third call's prompt (the old
        # 4-characters-per-token estimate counts about a third of it) starts it and overspends.
        limit = costs[keys[0]] + costs[keys[1]] + 0.6 * costs[keys[2]]
        _, _, spent, stopped = _run(real, fake, limit)
    assert stopped
    assert spent <= limit, f"spent ${spent:.6f} of a ${limit:.6f} budget (the server's count)"
    assert spent == pytest.approx(sum(costs[k] for k in keys[:2]))


def test_dry_run_states_how_tokens_were_counted(tmp_path: Path) -> None:
    spec = parse_judge_spec("openai:fake-judge?base_url=http://127.0.0.1:9/v1")
    est = estimate_messages([[Message(Role.USER, CHINESE)]], spec, JudgeOptions())
    assert "conservative estimate" in est.token_method and "does not know the model 'fake-judge'" in est.token_method
    assert est.prompt_tokens >= server_tokens(CHINESE)
    known = token_counter("gpt-4o")
    assert known.method.startswith("tiktoken") or "conservative estimate" in known.method


@given(st.text(max_size=200))
def test_conservative_count_is_never_below_the_fake_servers(text: str) -> None:
    assert conservative_tokens(text) >= server_tokens(text)


def test_conservative_count_is_chars_over_2_for_ascii_words() -> None:
    assert conservative_tokens("abcd efgh") == 5  # 2 + 1 + 2
    assert conservative_tokens("a1!") == 3
    assert conservative_tokens("量化") == 6  # 3 UTF-8 bytes each
    assert conservative_tokens(CHINESE) > len(CHINESE) / 4 * 4

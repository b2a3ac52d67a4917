"""The position-free likelihood judge: answer scores, symmetric verdicts, stored settings and rationale."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qlora_eval.errors import ConfigError
from qlora_eval.judge.base import Budget
from qlora_eval.judge.likelihood_judge import (
    DEFAULT_TIE_MARGIN,
    AnswerScore,
    LikelihoodJudge,
    answer_logprobs,
    compare,
    likelihood_judge_settings,
    parse_likelihood_target,
    user_turn,
)
from qlora_eval.judge.plan import latest_answers, plan_judgments
from qlora_eval.judge.runner import run_judge
from qlora_eval.judge.templates import load_templates
from qlora_eval.store import Store
from qlora_eval.types import Order, Verdict

_MIRROR = {Verdict.A: Verdict.B, Verdict.B: Verdict.A, Verdict.TIE: Verdict.TIE, Verdict.BOTH_BAD: Verdict.BOTH_BAD}


def test_compare_uses_the_margin_and_handles_empty_answers() -> None:
    good, bad, close = AnswerScore(-10.0, 10), AnswerScore(-30.0, 10), AnswerScore(-10.4, 10)
    assert compare(good, bad, 0.1) is Verdict.A and compare(bad, good, 0.1) is Verdict.B
    assert compare(good, close, 0.05) is Verdict.TIE  # difference 0.04 per token
    assert compare(good, close, 0.01) is Verdict.A
    empty = AnswerScore(0.0, 0)
    assert empty.mean is None
    assert compare(empty, bad, 0.1) is Verdict.B and compare(bad, empty, 0.1) is Verdict.A
    assert compare(empty, empty, 0.1) is Verdict.BOTH_BAD


def test_target_parsing_keeps_model_options_and_checks_the_margin() -> None:
    assert parse_likelihood_target("smollm2-135m").tie_margin == DEFAULT_TIE_MARGIN
    parsed = parse_likelihood_target("smollm2-135m?bits=4&tie_margin=0.2")
    assert parsed.model_spec == "smollm2-135m?bits=4" and parsed.tie_margin == 0.2
    settings = likelihood_judge_settings("smollm2-135m?tie_margin=0.2")
    assert settings["tie_margin"] == 0.2 and settings["model"] == "smollm2-135m"
    for bad in ("smollm2-135m?tie_margin=-1", "smollm2-135m?tie_margin=x", "smollm2-135m?tie_margin=nan"):
        with pytest.raises(ConfigError, match="tie_margin must be a number >= 0"):
            parse_likelihood_target(bad)
    with pytest.raises(ConfigError):
        parse_likelihood_target("smollm2-135m?bogus_option=1")


def test_answer_scores_match_the_models_own_loss(tiny_llama_dir: Path) -> None:
    """Batched, right-padded scores equal transformers' cross-entropy over the answer tokens, computed apart."""
    import torch

    from qlora_eval.models.hf import HFChatModel
    from qlora_eval.models.spec import parse_model_spec

    model = HFChatModel.from_spec(parse_model_spec(f"hf:{tiny_llama_dir}"), device="cpu")
    turns = [user_turn("What is the capital of France?"), user_turn("def add(a, b):"), user_turn("Say 1 2 3")]
    answers = ["The capital of France is Paris.", "return a + b", "1 2 3 4 5 6 7 8 9 0 + - * /"]
    batched = answer_logprobs(model, turns, answers, batch_size=3)
    tokenizer, net = model.loaded.tokenizer, model.loaded.model
    for conversation, answer, score in zip(turns, answers, batched, strict=True):
        context = tokenizer.encode(model.format_prompt(conversation), add_special_tokens=False)
        reply = tokenizer.encode(answer, add_special_tokens=False)
        ids = torch.tensor([context + reply])
        labels = ids.clone()
        labels[0, : len(context)] = -100  # the loss covers the answer tokens only
        with torch.no_grad():
            loss = float(net(input_ids=ids, labels=labels).loss)
        assert score.tokens == len(reply)
        assert score.mean == pytest.approx(-loss, abs=1e-4)
    assert answer_logprobs(model, turns[:1], [""])[0] == AnswerScore(0.0, 0)


def test_both_orders_give_mirrored_verdicts_and_are_stored_with_scores(db: Path, tiny_llama_dir: Path) -> None:
    target = f"hf:{tiny_llama_dir}?tie_margin=0.01"
    judge = LikelihoodJudge(target, batch_size=2)
    with Store(db) as store:
        prompts = store.prompts("t")
        answers = latest_answers(store.answers(prompt_set="t"), prompts)
        job = plan_judgments(
            prompts=prompts,
            answers=answers,
            models=["alpha", "beta", "gamma"],
            judge_id=judge.judge_id,
            judge_settings=judge.settings,
            templates=load_templates(),
            is_stored=store.has_judgment,
        )
        summary = run_judge(store, judge, job.requests, already_stored=0, budget=Budget(None), progress=False)
        stored = {s.key: s.judgment for s in store.judgments()}
    judge.close()
    assert summary.new == len(job.requests) == 18 and summary.invalid == 0 and summary.cost_usd == 0
    assert set(stored) == {r.key for r in job.requests}  # stored under the keys the plan computed
    by_pair: dict[tuple[str, str, str], dict[Order, object]] = {}
    verdicts = set()
    for j in stored.values():
        assert j.judge == f"local-likelihood:{target}"
        assert j.settings["protocol"] == "pointwise-mean-logprob" and j.settings["tie_margin"] == 0.01
        assert j.template_hash  # recorded like any judgment
        found = re.search(r"answer 1 (-?[0-9.]+) \(\d+ tokens\), answer 2 (-?[0-9.]+)", j.rationale)
        assert found is not None, j.rationale
        first, second = sorted((j.model_a, j.model_b))
        by_pair.setdefault((j.prompt_id, first, second), {})[j.order] = j
        verdicts.add(j.verdict)
    for pair in by_pair.values():
        forward, swapped = pair[Order.FORWARD], pair[Order.SWAPPED]
        assert swapped.verdict is _MIRROR[forward.verdict]  # type: ignore[attr-defined]
        scores_f = re.findall(r"answer [12] (-?[0-9.]+)", forward.rationale)  # type: ignore[attr-defined]
        scores_s = re.findall(r"answer [12] (-?[0-9.]+)", swapped.rationale)  # type: ignore[attr-defined]
        assert scores_f == scores_s[::-1]
    assert verdicts & {Verdict.A, Verdict.B}  # the answers differ, so some verdicts are decisive


def test_a_non_hf_judge_model_is_refused() -> None:
    with pytest.raises(ConfigError, match="transformers model"):
        LikelihoodJudge("openai:gpt-4")


def test_registered_as_a_local_judge_kind() -> None:
    from qlora_eval.judge.options import JudgeOptions
    from qlora_eval.judge.registry import judge_grammar, parse_judge_spec

    spec = parse_judge_spec("local-likelihood:smollm2-135m?tie_margin=0.1")
    assert spec.kind.runs_locally and spec.judge_id == "local-likelihood:smollm2-135m?tie_margin=0.1"
    assert spec.settings(JudgeOptions())["tie_margin"] == 0.1
    assert "local-likelihood:MODEL_SPEC" in judge_grammar()
    with pytest.raises(ConfigError, match="tie_margin"):
        parse_judge_spec("local-likelihood:smollm2-135m?tie_margin=-2")

"""Judge agreement statistics and answer lengths."""

from __future__ import annotations

import numpy as np
import pytest

from qlora_eval.judge.diagnostics import answer_lengths, cohen_kappa, judge_agreement
from qlora_eval.types import Judgment, Order, Verdict


def _j(judge: str, a: str, b: str, prompt: str, verdict: Verdict) -> Judgment:
    return Judgment(
        judge, a, b, "t", prompt, verdict, Order.of(a, b), answer_a_key=f"{a}/{prompt}", answer_b_key=f"{b}/{prompt}"
    )


def test_cohen_kappa_textbook_value() -> None:
    # Wikipedia's worked example: 50 items, 20 yes/yes, 15 no/no, 5 and 10 disagreements -> kappa 0.4
    assert cohen_kappa(np.array([[20, 5], [10, 15]])) == pytest.approx(0.4)
    assert cohen_kappa(np.array([[7, 0], [0, 0]])) is None  # chance agreement 1: undefined
    assert cohen_kappa(np.zeros((3, 3))) is None


def test_agreement_matches_orders_and_ignores_invalid() -> None:
    judgments = [
        # gpt agrees with humans on prompt 1 (x wins), ties on prompt 2 vs human win, humans saw swapped order
        _j("gpt", "x", "y", "1", Verdict.A),
        _j("human:ann", "y", "x", "1", Verdict.B),  # x shown second and won: same outcome
        _j("gpt", "x", "y", "2", Verdict.TIE),
        _j("human:ann", "x", "y", "2", Verdict.B),
        _j("gpt", "x", "y", "3", Verdict.B),
        _j("human:ann", "x", "y", "3", Verdict.B),
        _j("gpt", "x", "y", "4", Verdict.INVALID),
        _j("human:ann", "x", "y", "4", Verdict.A),
        _j("gpt", "x", "y", "5", Verdict.A),  # humans never rated prompt 5
    ]
    (result,) = judge_agreement(judgments)
    assert (result.judge_1, result.judge_2) == ("gpt", "human:ann")
    assert result.shared == 3
    assert result.agreement == pytest.approx(2 / 3)
    assert result.decisive_shared == 2 and result.agreement_without_ties == 1.0
    assert result.confusion == ((1, 0, 0), (0, 1, 0), (0, 1, 0))
    assert result.kendall_tau is None and result.rated_models == 0


def test_rank_correlation_of_judges_ratings() -> None:
    judgments = [_j("j1", "a", "b", "1", Verdict.A), _j("j2", "a", "b", "1", Verdict.A)]
    ratings = {"j1": {"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.0}, "j2": {"a": 3.0, "b": 2.0, "c": 0.0, "d": 1.0}}
    (result,) = judge_agreement(judgments, ratings)
    assert result.rated_models == 4
    assert result.kendall_tau == pytest.approx(4 / 6)  # 5 concordant, 1 discordant pair
    assert result.spearman_rho == pytest.approx(0.8)
    assert result.cohen_kappa is None  # one shared battle, one label: chance agreement 1


def test_answer_lengths_align_or_refuse_partial() -> None:
    judgments = [_j("j", "a", "b", "1", Verdict.A), _j("j", "b", "a", "1", Verdict.B)]
    lengths = {"a/1": 10, "b/1": 30}
    assert answer_lengths(judgments, lengths.get) == ([10.0, 30.0], [30.0, 10.0])
    assert answer_lengths(judgments, {"a/1": 10}.get) is None

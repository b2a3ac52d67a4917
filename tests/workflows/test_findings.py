"""The computed NF4-vs-full-precision sentence: which pairs it covers and what it says about the interval."""

from __future__ import annotations

import numpy as np

from qlora_eval.models.spec import parse_model_spec
from qlora_eval.rating import RatingMethod, rank_battles
from qlora_eval.types import Battle, GenerationSettings, Verdict
from qlora_eval.workflows.findings import precision_findings

SAMPLED = GenerationSettings(temperature=0.7, top_p=0.9)
CONTESTANTS = [
    (parse_model_spec("smollm2-135m?name=fp32"), SAMPLED),
    (parse_model_spec("smollm2-135m?bits=4&name=nf4"), SAMPLED),
    (parse_model_spec("smollm2-135m?name=greedy"), GenerationSettings(do_sample=False)),
    (parse_model_spec("smollm2-135m?name=broken"), GenerationSettings(temperature=2.0, top_p=1.0)),
]


def _battles(nf4_beats_fp32: list[Verdict]) -> list[Battle]:
    """fp32/nf4 battles with the given verdicts (nf4 shown first), plus both beating greedy and broken on 20 prompts."""
    battles = [Battle("nf4", "fp32", v, f"p{i}") for i, v in enumerate(nf4_beats_fp32)]
    for i in range(20):
        for strong in ("fp32", "nf4"):
            battles.append(Battle(strong, "broken", Verdict.A, f"p{i}"))
            battles.append(Battle("greedy", strong, Verdict.TIE if i % 2 else Verdict.A, f"p{i}"))
        battles.append(Battle("greedy", "broken", Verdict.A, f"p{i}"))
    return battles


def test_a_balanced_pair_lies_within_the_interval() -> None:
    verdicts = [Verdict.A, Verdict.B] * 10
    ranking = rank_battles(_battles(verdicts), RatingMethod.BT, 200, np.random.default_rng(0), prior=1.0)
    (finding,) = precision_findings(ranking, CONTESTANTS)  # greedy and broken differ in sampling: no finding
    assert (finding.low, finding.high, finding.low_bits, finding.high_bits) == ("nf4", "fp32", 4, 32)
    assert finding.within and finding.ci_low < 0 < finding.ci_high
    assert "contains 0" in finding.sentence and "nf4" in finding.sentence and "fp32" in finding.sentence
    assert finding.to_json()["within"] is True


def test_a_clearly_worse_nf4_lies_outside_the_interval() -> None:
    verdicts = [Verdict.B] * 18 + [Verdict.TIE] * 2  # fp32 wins almost every prompt
    ranking = rank_battles(_battles(verdicts), RatingMethod.BT, 200, np.random.default_rng(0), prior=1.0)
    (finding,) = precision_findings(ranking, CONTESTANTS)
    assert not finding.within and finding.ci_high < 0 and finding.difference < 0
    assert "excludes 0" in finding.sentence and "measurably lower" in finding.sentence


def test_no_finding_without_a_precision_pair() -> None:
    ranking = rank_battles(_battles([Verdict.A] * 4), RatingMethod.BT, 50, np.random.default_rng(0), prior=1.0)
    assert precision_findings(ranking, [CONTESTANTS[0], CONTESTANTS[2], CONTESTANTS[3]]) == []

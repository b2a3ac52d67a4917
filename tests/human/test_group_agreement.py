"""Majority votes, Fleiss' kappa within a judge group, Cohen's kappa against a group's majority, rank correlation;
figures computed by hand below each table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qlora_eval.human.group_agreement import (
    default_groups,
    group_agreement,
    majority_agreement,
    majority_battles,
    majority_votes,
    rank_correlation,
)
from qlora_eval.types import Judgment, Order, Verdict
from tests.cli.helpers import run_cli

WINS = {"a": 0, "b": 1, "tie": 2}


def _vote(judge: str, prompt: str, result: str, *, swapped: bool = False) -> Judgment:
    """A judgment of models a and b on prompt ``prompt``: ``result`` is a, b or tie, shown in either order."""
    first, second = ("b", "a") if swapped else ("a", "b")
    verdict = Verdict.TIE if result == "tie" else (Verdict.A if result == first else Verdict.B)
    return Judgment(judge, first, second, "t", prompt, verdict, Order.SWAPPED if swapped else Order.FORWARD)


# Three raters on four subjects; GPT-4 judged each subject in both orders.
HUMANS = {"1": ("a", "a", "a"), "2": ("b", "b", "a"), "3": ("tie", "tie", "b"), "4": ("a", "b", "tie")}
GPT4 = {"1": ("a", "a"), "2": ("b", "b"), "3": ("a", "a"), "4": ("a", "a")}


def _judgments() -> list[Judgment]:
    out = [
        _vote(f"human:r{i}", prompt, result, swapped=i == 2)
        for prompt, results in HUMANS.items()
        for i, result in enumerate(results)
    ]
    out += [_vote("gpt-4", p, r, swapped=k == 1) for p, results in GPT4.items() for k, r in enumerate(results)]
    return out


def test_fleiss_kappa_and_majority_of_the_human_group() -> None:
    result = group_agreement(_judgments(), "human:*")
    # Hand: P_i = 1, 1/3, 1/3, 0 -> P_bar = 5/12; shares 5/12, 4/12, 3/12 -> P_e = 50/144; kappa = 5/47.
    assert result.fleiss_kappa == pytest.approx(5 / 47)
    assert (result.raters, result.subjects, result.multi_rated) == (3, 4, 4)
    assert result.majority == {"first model wins": 1, "second model wins": 1, "tie": 1, "split": 1}
    assert majority_votes(_judgments(), "human:*")[("t", "4", "a", "b")] is None


def test_gpt4_against_the_human_majority() -> None:
    row = majority_agreement(_judgments(), "gpt-4", "human:*")
    # Shared subjects 1-3 (4 is split): (a,a), (b,b), (a,tie) -> agreement 2/3; p_e = (2*1 + 1*1)/9 -> kappa 0.5.
    assert row.shared == 3 and row.agreement == pytest.approx(2 / 3) and row.cohen_kappa == pytest.approx(0.5)


def test_groups_battles_and_rank_correlation() -> None:
    assert default_groups(["human:r1", "human:r2", "gpt-4", "local:x"]) == ["human:*"]
    battles = majority_battles(_judgments(), "human:*")
    assert [(b.prompt_id, b.verdict) for b in battles] == [("t/1", Verdict.A), ("t/2", Verdict.B), ("t/3", Verdict.TIE)]
    tau, rho = rank_correlation({"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.0}, {"a": 3.0, "b": 1.0, "c": 2.0, "d": 0.0})
    assert tau == pytest.approx(4 / 6) and rho == pytest.approx(0.8)
    assert rank_correlation({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.0}) == (None, None)


def test_rank_json_and_report_gain_group_agreement(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    strength = {"m1": 2.0, "m2": 1.0, "m3": 0.0, "m4": -1.0}
    rows = []
    models = sorted(strength)
    for prompt in range(40):
        for i, a in enumerate(models):
            for b in models[i + 1 :]:
                p = 1 / (1 + np.exp(strength[b] - strength[a]))
                for judge in ("gpt-4", "human:alice", "human:bob", "human:carol"):
                    winner = "model_a" if rng.random() < p else "model_b"
                    rows.append({"model_a": a, "model_b": b, "winner": winner, "question_id": prompt, "judge": judge})
    path = tmp_path / "battles.json"
    path.write_text(json.dumps(rows))
    out = tmp_path / "rank.json"
    html = tmp_path / "rank.html"
    code, _, err = run_cli(
        capsys, "rank", str(path), "--format", "arena", "--rounds", "50", "--json", str(out), "--html", str(html)
    )
    assert code == 0, err
    diagnostics = json.loads(out.read_text())["diagnostics"]
    groups = {g["group"]: g for g in diagnostics["groups"]}
    assert groups["human:*"]["raters"] == 3 and groups["human:*"]["multi_rated"] == 40 * 6
    assert groups["human:*"]["fleiss_kappa"] is not None
    versus = next(m for m in diagnostics["majority_agreement"] if (m["judge"], m["group"]) == ("gpt-4", "human:*"))
    assert versus["shared"] > 0 and versus["cohen_kappa"] is not None
    assert versus["kendall_tau"] is not None and versus["spearman_rho"] is not None
    page = html.read_text()
    assert "Fleiss" in page and "Judges against group majorities" in page

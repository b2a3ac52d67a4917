"""The local judge: verdicts from next-token probabilities, never INVALID, probabilities in the rationale."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qlora_eval.judge.base import Budget
from qlora_eval.judge.local_judge import AVERAGING_CHANGED, LocalJudge, averaging_changes
from qlora_eval.judge.plan import latest_answers
from qlora_eval.judge.runner import run_judge
from qlora_eval.judge.session import JudgeOptions, plan
from qlora_eval.judge.spec import parse_judge_spec
from qlora_eval.store import Store
from qlora_eval.types import Verdict


def test_local_judge_on_a_tiny_model(db: Path, tiny_llama_dir: Path) -> None:
    spec = parse_judge_spec(f"local:hf:{tiny_llama_dir}")
    with Store(db) as store:
        prompts = store.prompts("t")
        answers = latest_answers(store.answers(prompt_set="t"), prompts)
        job = plan(store, spec=spec, options=JudgeOptions(), prompts=prompts, answers=answers, models=["alpha", "beta"])
        judge = LocalJudge(spec.target, batch_size=4)
        summary = run_judge(store, judge, job.requests, already_stored=0, budget=Budget(None), progress=False)
        stored = [s.judgment for s in store.judgments()]
    assert summary.new == 6 and summary.invalid == 0 and summary.requests == 6 and summary.cost_usd == 0
    assert len(stored) == 6
    for j in stored:
        assert j.verdict in (Verdict.A, Verdict.B, Verdict.TIE) and j.judge == f"local:hf:{tiny_llama_dir}"
        probs = [float(x) for x in re.findall(r"P\([123]\)=([0-9]+\.[0-9]+)", j.rationale)]
        assert len(probs) == 3 and abs(sum(probs) - 1) < 0.01
        calibrated = re.search(r"Calibrated: 1: ([0-9.]+), 2: ([0-9.]+), 3: ([0-9.]+) -> ([123])", j.rationale)
        assert calibrated is not None
        values = [float(calibrated.group(i)) for i in (1, 2, 3)]
        best = max(range(3), key=lambda i: values[i])
        assert calibrated.group(4) == str(best + 1)  # this order alone
        averaged = re.search(
            r"Averaged with the swapped order: 1: ([0-9.]+), 2: ([0-9.]+), 3: ([0-9.]+) -> ([123])", j.rationale
        )
        assert averaged is not None
        mean = [float(averaged.group(i)) for i in (1, 2, 3)]
        chosen = max(range(3), key=lambda i: mean[i])
        assert averaged.group(4) == str(chosen + 1) and abs(sum(mean) - 1) < 0.01
        assert j.verdict is (Verdict.A, Verdict.B, Verdict.TIE)[chosen]  # the verdict follows both orders
        assert (AVERAGING_CHANGED in j.rationale) == (chosen != best)
        assert j.settings["protocol"] == "pairwise-3class-next-token"
    mirror = {Verdict.A: Verdict.B, Verdict.B: Verdict.A, Verdict.TIE: Verdict.TIE}
    by_pair: dict[tuple[str, str, str], list[Verdict]] = {}
    for j in stored:
        # FORWARD first: the verdict about the alphabetically first model either way round
        key = (j.prompt_id, *sorted((j.model_a, j.model_b)))
        by_pair.setdefault(key, []).append(j.verdict if j.model_a < j.model_b else mirror[j.verdict])
    assert all(len(set(v)) == 1 for v in by_pair.values())  # both orders agree after averaging
    # Issue 14: check the calibration arithmetic itself, not only that the printed argmax fits the printed numbers:
    # calibrated = P / content-free preference, renormalised; averaged = (this order + the mirrored other order) / 2.
    calibrated_of: dict[tuple[str, str, str], list[float]] = {}
    for j in stored:
        probs = [float(x) for x in re.findall(r"P\([123]\)=([0-9]+\.[0-9]+)", j.rationale)]
        free = re.search(r"Content-free preference: 1: ([0-9.]+), 2: ([0-9.]+), 3: ([0-9.]+)\.", j.rationale)
        cal = re.search(r"Calibrated: 1: ([0-9.]+), 2: ([0-9.]+), 3: ([0-9.]+) ->", j.rationale)
        assert free is not None and cal is not None
        ratio = [p / float(free.group(i + 1)) for i, p in enumerate(probs)]
        expected = [r / sum(ratio) for r in ratio]
        printed = [float(cal.group(i)) for i in (1, 2, 3)]
        assert printed == pytest.approx(expected, abs=0.006), j.rationale
        calibrated_of[(j.prompt_id, j.model_a, j.model_b)] = printed
    for j in stored:
        own = calibrated_of[(j.prompt_id, j.model_a, j.model_b)]
        other = calibrated_of[(j.prompt_id, j.model_b, j.model_a)]
        averaged = re.search(r"Averaged with the swapped order: 1: ([0-9.]+), 2: ([0-9.]+), 3: ([0-9.]+)", j.rationale)
        assert averaged is not None
        expected = [(own[0] + other[1]) / 2, (own[1] + other[0]) / 2, (own[2] + other[2]) / 2]
        assert [float(averaged.group(i)) for i in (1, 2, 3)] == pytest.approx(expected, abs=0.002)
    changed, total = averaging_changes(stored)
    assert total == 6 and changed == sum(AVERAGING_CHANGED in j.rationale for j in stored)

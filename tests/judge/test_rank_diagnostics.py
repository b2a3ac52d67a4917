"""``qlora-eval rank --db`` writes judge diagnostics: length preference from stored answers, agreement of judges."""

from __future__ import annotations

import json
from pathlib import Path

from qlora_eval.cli.main import main
from qlora_eval.judge.plan import latest_answers
from qlora_eval.store import Store
from qlora_eval.types import Judgment, Order, Verdict


def test_rank_json_has_diagnostics(db: Path, tmp_path: Path) -> None:
    with Store(db) as store:
        prompts = store.prompts("t")
        answers = latest_answers(store.answers(prompt_set="t"), prompts)
        judgments = []
        for p in prompts:
            for a, b in (("alpha", "beta"), ("beta", "alpha"), ("alpha", "gamma"), ("gamma", "alpha")):
                first, second = answers[(a, p.prompt_id)], answers[(b, p.prompt_id)]
                longer = Verdict.A if len(first.text) > len(second.text) else Verdict.B
                common = {"prompt_set": "t", "prompt_id": p.prompt_id, "order": Order.of(a, b)}
                keys = {"answer_a_key": first.answer_key, "answer_b_key": second.answer_key}
                judgments.append(Judgment("judge-long", a, b, verdict=longer, **common, **keys))  # type: ignore[arg-type]
                judgments.append(Judgment("judge-first", a, b, verdict=Verdict.A, **common, **keys))  # type: ignore[arg-type]
        store.add_judgments(judgments)
    out = tmp_path / "rank.json"
    assert main(["rank", "--db", str(db), "--rounds", "50", "--json", str(out), "--judge", "judge-long"]) == 0
    diagnostics = json.loads(out.read_text())["diagnostics"]
    assert diagnostics["length_preference"]["longer_win_rate"] == 1.0
    assert diagnostics["position_bias"]["consistency"] == 1.0 and diagnostics["agreement"] == []
    assert main(["rank", "--db", str(db), "--rounds", "50", "--json", str(out)]) == 0
    (agreement,) = json.loads(out.read_text())["diagnostics"]["agreement"]
    assert (agreement["judge_1"], agreement["judge_2"]) == ("judge-first", "judge-long")
    assert agreement["shared"] == 12 and agreement["agreement"] == 0.5  # judge-first is right in one order of two

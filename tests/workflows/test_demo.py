"""The offline demo means something: the broken contestant ranks last, the judge has no position bias, and the
report states (computed) whether NF4 vs full precision lies within the interval.

The slow test runs ``tournaments/demo.yaml`` itself on its first prompts (every contestant, judge and setting as
in the demo). ``check_demo_document`` is the check; ``QLORA_EVAL_DEMO_JSON=reports/demo.json`` applies it to the
JSON of a full ``qlora-eval tournament --config tournaments/demo.yaml`` run instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BROKEN = "smollm2-broken"
#: Prompts of the demo set the subset run uses (the whole set has 12).
SUBSET = 6


def check_demo_document(document: dict[str, Any], html: str | None) -> None:
    """The issue-17 claims about a demo tournament document (and its HTML report, when given)."""
    assert document["judge"].startswith("local-likelihood:")
    for method in ("elo", "bt"):
        rows = document[method]["models"]
        assert {r["model"] for r in rows} == {"smollm2-fp32", "smollm2-nf4", "smollm2-greedy", BROKEN}
        assert rows[-1]["model"] == BROKEN, f"{method}: {[r['model'] for r in rows]}"
        broken = rows[-1]
        others_low = min(r["ci_low"] for r in rows[:-1])
        assert broken["ci_high"] < others_low, (
            f"{method}: {BROKEN} interval reaches {broken['ci_high']} >= {others_low}"
        )
    bias = document["diagnostics"]["position_bias"]
    assert bias["first_win_rate"] is not None and 0.4 <= bias["first_win_rate"] <= 0.6, bias
    findings = [f for f in document.get("findings", []) if f["kind"] == "precision"]
    assert len(findings) == 1, findings
    finding = findings[0]
    assert (finding["low"], finding["high"]) == ("smollm2-nf4", "smollm2-fp32")
    within = finding["ci_low"] <= 0 <= finding["ci_high"]
    assert finding["within"] is within
    assert ("contains 0" in finding["sentence"]) is within and ("excludes 0" in finding["sentence"]) is not within
    # the sentence's figures are the document's, not typed in
    bt = {r["model"]: r["rating"] for r in document["bt"]["models"]}
    assert finding["difference"] == pytest.approx(bt["smollm2-nf4"] - bt["smollm2-fp32"])
    assert f"{abs(finding['difference']):.0f} points" in finding["sentence"]
    assert f"{finding['ci_low']:+.0f} to {finding['ci_high']:+.0f}" in finding["sentence"]
    if html is not None:
        import html as html_lib

        assert finding["sentence"] in html_lib.unescape(html)  # under the title, as computed
        assert "generic" in html and "mean per-token log-probability" in html  # the judge box names its biases


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 24 answers of up to 128 tokens on a CPU: minutes, more on a shared machine
def test_demo_ranks_the_broken_contestant_last(tmp_path: Path) -> None:
    env_json = os.environ.get("QLORA_EVAL_DEMO_JSON")
    if env_json:
        path = Path(env_json)
        html_path = path.with_suffix(".html")
        check_demo_document(json.loads(path.read_text()), html_path.read_text() if html_path.exists() else None)
        return
    from qlora_eval.config import PromptsConfig, load_tournament_config
    from qlora_eval.workflows.tournament import run_tournament

    demo = load_tournament_config(REPO / "tournaments" / "demo.yaml")
    config = demo.with_overrides(
        prompts=PromptsConfig(name=demo.prompts.name, data_dir=demo.prompts.data_dir, limit=SUBSET),
        db=tmp_path / "demo.db",
        html=tmp_path / "demo.html",
        json=tmp_path / "demo.json",
    )
    result = run_tournament(config, progress=False)
    assert result.complete and result.judging.new == SUBSET * 6 * 2
    check_demo_document(json.loads(config.json.read_text()), config.html.read_text())
    again = run_tournament(config, progress=False)  # a re-run does no new work
    assert again.generated == 0 and again.judging.new == 0 and again.judging.requests == 0

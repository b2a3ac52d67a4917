"""The regression gate as a library function: statuses, missing models, refusals."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qlora_eval.errors import ConfigError, InputError
from qlora_eval.workflows.check import Status, check, summary_markdown
from qlora_eval.workflows.document import RankDocument


def _doc(method: str = "elo", **models: tuple[float, float, float]) -> RankDocument:
    rows = [{"model": m, "rating": r, "ci_low": lo, "ci_high": hi} for m, (r, lo, hi) in models.items()]
    return RankDocument.from_json({"method": method, "models": rows})


def test_statuses_follow_the_rule() -> None:
    base = _doc(a=(1100, 1080, 1120), b=(1000, 980, 1020), c=(900, 880, 920), d=(950, 940, 960))
    cand = _doc(a=(1000, 980, 1020), b=(985, 960, 1010), c=(1000, 980, 1020), e=(1, 0, 2))
    result = check(base, cand, max_drop=10)
    status = {r.model: r.status for r in result.rows}
    assert status == {"a": Status.REGRESSED, "b": Status.DROPPED_WITHIN, "c": Status.IMPROVED}
    assert result.missing == ("d",) and result.new == ("e",) and result.failed
    # issue 14: a model missing from the candidate fails the gate unless --allow-missing
    assert check(base, _doc(a=(1100, 1080, 1120), b=(1000, 980, 1020)), max_drop=10).failed
    assert not check(base, _doc(a=(1100, 1080, 1120), b=(1000, 980, 1020)), max_drop=10, allow_missing=True).failed
    assert check(base, _doc(a=(1100, 1080, 1120)), max_drop=10).failed
    assert summary_markdown(result).startswith("## qlora-eval check: FAIL")


def test_refusals() -> None:
    base = _doc(a=(1, 0, 2))
    with pytest.raises(ConfigError, match="not comparable"):
        check(base, _doc("bt", a=(1, 0, 2)), max_drop=1)
    with pytest.raises(ConfigError, match="--max-drop"):
        check(base, base, max_drop=-1)
    with pytest.raises(InputError, match="no model of the baseline"):
        check(base, _doc(b=(1, 0, 2)), max_drop=1)


def _sets(doc: RankDocument, prompt_sets: tuple[str, ...], judges: tuple[str, ...]) -> RankDocument:
    return replace(doc, prompt_sets=prompt_sets, judges=judges)


def test_different_prompt_sets_or_judges_refused_unless_allowed() -> None:
    """Issue 14: rankings of different verdicts are not comparable: refused (ConfigError, exit 2)."""
    base = _sets(_doc(a=(1100, 1080, 1120)), ("vicuna",), ("openai:gpt-4",))
    other_set = _sets(base, ("oasst",), ("openai:gpt-4",))
    other_judge = _sets(base, ("vicuna",), ("local:smollm2-135m",))
    for cand, what in ((other_set, "prompt sets: baseline vicuna, candidate oasst"), (other_judge, "judges")):
        with pytest.raises(ConfigError, match="--allow-different") as caught:
            check(base, cand, max_drop=10)
        assert what in str(caught.value)
        result = check(base, cand, max_drop=10, allow_different=True)
        assert not result.failed and result.differences
        assert "--allow-different" in summary_markdown(result)
    assert check(base, _sets(base, ("vicuna",), ("openai:gpt-4",)), max_drop=10).differences == ()


def test_newline_in_a_model_name_cannot_forge_a_pass_heading() -> None:
    """Issue 14: a name 'x\n## qlora-eval check: PASS' once started a second heading in the Markdown summary."""
    forged = "x\n\n## qlora-eval check: PASS\n"
    base = _doc(a=(1100, 1080, 1120), **{forged: (1000, 990, 1010)})
    cand = _doc(a=(900, 880, 920), **{forged: (1000, 990, 1010)})
    text = summary_markdown(check(base, cand, max_drop=10))
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == ["## qlora-eval check: FAIL"]
    assert "\\u000a" in text

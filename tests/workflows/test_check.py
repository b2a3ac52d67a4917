"""The regression gate as a library function: statuses, missing models, refusals."""

from __future__ import annotations

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
    assert not check(base, _doc(a=(1100, 1080, 1120), b=(1000, 980, 1020)), max_drop=10).failed
    assert check(base, _doc(a=(1100, 1080, 1120)), max_drop=10, fail_on_missing=True).failed
    assert summary_markdown(result).startswith("## qlora-eval check: FAIL")


def test_refusals() -> None:
    base = _doc(a=(1, 0, 2))
    with pytest.raises(ConfigError, match="not comparable"):
        check(base, _doc("bt", a=(1, 0, 2)), max_drop=1)
    with pytest.raises(ConfigError, match="--max-drop"):
        check(base, base, max_drop=-1)
    with pytest.raises(InputError, match="no model of the baseline"):
        check(base, _doc(b=(1, 0, 2)), max_drop=1)

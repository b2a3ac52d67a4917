"""``qlora-eval check``: exit 0 without a regression, 1 with one (Markdown summary), 2 for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import run_cli, write_tournament


def _rank(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, **shift: float) -> Path:
    folder = write_tournament(tmp_path / name, prompts=40, seed=1, shift=shift)
    out = tmp_path / f"{name}.json"
    assert run_cli(capsys, "rank", str(folder), "--format", "qlora", "--method", "bt", "--rounds", "200",
                   "--json", str(out))[0] == 0  # fmt: skip
    return out


def test_real_regression_fails_with_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _rank(tmp_path, capsys, "base")
    worse = _rank(tmp_path, capsys, "worse", alpha=-300.0)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    code, out, _ = run_cli(
        capsys, "check", "--baseline", str(base), "--candidate", str(worse), "--max-drop", "20", "--summary",
        str(summary),
    )  # fmt: skip
    assert code == 1
    assert out.startswith("## qlora-eval check: FAIL")
    assert "| alpha |" in out and "**REGRESSED**" in out
    assert summary.read_text().startswith("earlier step\n## qlora-eval check: FAIL")  # appended, not replaced


def test_same_ranking_and_large_threshold_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _rank(tmp_path, capsys, "base")
    worse = _rank(tmp_path, capsys, "worse", alpha=-300.0)
    code, out, _ = run_cli(capsys, "check", "--baseline", str(base), "--candidate", str(base), "--max-drop", "5")
    assert code == 0 and out.startswith("## qlora-eval check: PASS")
    code, _, _ = run_cli(capsys, "check", "--baseline", str(base), "--candidate", str(worse), "--max-drop", "1000")
    assert code == 0


def test_drop_inside_intervals_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _rank(tmp_path, capsys, "base")
    doc = json.loads(base.read_text())
    top = doc["models"][0]
    width = top["ci_high"] - top["ci_low"]
    top["rating"] -= 30.0
    top["ci_low"] -= 0.4 * width
    top["ci_high"] -= 0.4 * width  # overlaps the baseline interval: not outside, so not a regression
    cand = tmp_path / "cand.json"
    cand.write_text(json.dumps(doc))
    code, out, _ = run_cli(capsys, "check", "--baseline", str(base), "--candidate", str(cand), "--max-drop", "10")
    assert code == 0 and "dropped, within intervals" in out


def test_missing_models_reported_and_optionally_fatal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _rank(tmp_path, capsys, "base")
    doc = json.loads(base.read_text())
    doc["models"] = [m for m in doc["models"] if m["model"] != "delta"]
    cand = tmp_path / "cand.json"
    cand.write_text(json.dumps(doc))
    args = ["check", "--baseline", str(base), "--candidate", str(cand), "--max-drop", "10"]
    code, out, _ = run_cli(capsys, *args)  # issue 14: missing is a failure by default
    assert code == 1 and "**Missing from the candidate:** `delta`" in out
    code, out, _ = run_cli(capsys, *args, "--allow-missing")
    assert code == 0 and "**Missing from the candidate:** `delta`" in out
    assert run_cli(capsys, *args, "--fail-on-missing")[0] == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not JSON"),
        ("[]", "'models' list"),
        ('{"method": "elo", "models": [{"model": "a", "rating": "high", "ci_low": 1, "ci_high": 2}]}', "'rating'"),
        ('{"method": "bt", "models": [{"model": "a", "rating": 1, "ci_low": 0, "ci_high": 2}]}', "not comparable"),
    ],
)
def test_bad_or_mismatched_json_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"method": "elo", "models": [{"model": "a", "rating": 1, "ci_low": 0, "ci_high": 2}]}')
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, _, err = run_cli(capsys, "check", "--baseline", str(good), "--candidate", str(bad), "--max-drop", "1")
    assert code == 2 and message in err

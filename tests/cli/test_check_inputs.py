"""``qlora-eval check`` (issue 14): an input it cannot read is exit 2, always, never the "regressed" exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli.helpers import run_cli

GOOD = {"method": "elo", "models": [{"model": "a", "rating": 1, "ci_low": 0, "ci_high": 2}]}


def _good(tmp_path: Path) -> Path:
    path = tmp_path / "good.json"
    path.write_text(json.dumps(GOOD))
    return path


@pytest.mark.parametrize("side", ["--baseline", "--candidate"])
def test_non_utf8_file_is_exit_2_naming_file_and_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], side: str
) -> None:
    bad = tmp_path / "latin1.json"
    data = json.dumps(GOOD).replace('"a"', '"caf\u00e9"').encode("latin-1")
    bad.write_bytes(data)
    files = {"--baseline": str(_good(tmp_path)), "--candidate": str(_good(tmp_path))} | {side: str(bad)}
    code, _, err = run_cli(capsys, "check", *[x for kv in files.items() for x in kv], "--max-drop", "1")
    assert code == 2
    assert str(bad) in err and "not UTF-8" in err and f"at byte {data.index(bytes([0xE9]))}" in err


def test_relative_document_non_utf8_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "rel.json"
    bad.write_bytes(b'{"method": "relative", "reference": "\xff"}')
    code, _, err = run_cli(capsys, "check", "--baseline", str(bad), "--candidate", str(bad), "--max-drop", "1")
    assert code == 2 and f"{bad}: not UTF-8" in err


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d | {"judges": 5},
        lambda d: d | {"inputs": [1]},
        lambda d: d | {"models": [{"model": "a", "rating": 1, "ci_low": 0, "ci_high": 2}, 7]},
    ],
)
def test_malformed_fields_are_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], mangle: object) -> None:
    cand = tmp_path / "cand.json"
    cand.write_text(json.dumps(mangle(dict(GOOD))))  # type: ignore[operator]
    code, _, err = run_cli(capsys, "check", "--baseline", str(_good(tmp_path)), "--candidate", str(cand),
                           "--max-drop", "1")  # fmt: skip
    assert code == 2 and str(cand) in err


def test_folder_and_unwritable_summary_are_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = str(_good(tmp_path))
    code, _, err = run_cli(capsys, "check", "--baseline", good, "--candidate", str(tmp_path), "--max-drop", "1")
    assert code == 2 and "folder" in err
    code, _, err = run_cli(capsys, "check", "--baseline", good, "--candidate", good, "--max-drop", "1",
                           "--summary", str(tmp_path))  # fmt: skip
    assert code == 2 and "cannot append the summary" in err


def test_different_judges_refused_unless_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, cand = tmp_path / "b.json", tmp_path / "c.json"
    base.write_text(json.dumps(GOOD | {"judges": ["openai:gpt-4"], "prompt_sets": ["vicuna"]}))
    cand.write_text(json.dumps(GOOD | {"judges": ["local:smollm2-135m"], "prompt_sets": ["vicuna"]}))
    args = ["check", "--baseline", str(base), "--candidate", str(cand), "--max-drop", "1"]
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "judges" in err and "--allow-different" in err
    code, out, _ = run_cli(capsys, *args, "--allow-different")
    assert code == 0 and "different verdicts" in out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200) | st.builds(lambda v: json.dumps(v).encode(), st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["method", "models", "model", "rating", "ci_low", "ci_high", "judges", "prompt_sets",
                         "inputs", "diagnostics", "schema_version", "reference", "percent"]), inner, max_size=6),
    max_leaves=20,
)))  # fmt: skip
def test_any_candidate_bytes_give_0_1_or_2_never_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes
) -> None:
    cand = tmp_path / "fuzz.json"
    cand.write_bytes(data)
    code, _, err = run_cli(capsys, "check", "--baseline", str(_good(tmp_path)), "--candidate", str(cand),
                           "--max-drop", "1", "--allow-missing")  # fmt: skip
    assert code in (0, 1, 2)
    if code == 2:
        assert str(cand) in err or "error" in err

"""Human votes are each kept; a different machine verdict for the same call is a conflict, never a duplicate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlora_eval.store import Store
from tests.cli.helpers import run_cli


def _arena(path: Path, winners: list[str], judge: str | None = None) -> Path:
    rows = [
        {"model_a": "x", "model_b": "y", "winner": w, "question_id": 7, **({"judge": judge} if judge else {})}
        for w in winners
    ]
    path.write_text(json.dumps(rows))
    return path


def test_every_human_vote_is_kept_and_reimport_adds_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.db")
    # Three Arena votes (default judge arena-human) on the same pair, prompt and order; two agree.
    one = _arena(tmp_path / "one.json", ["model_a", "model_b", "model_a"])
    code, out, _ = run_cli(capsys, "import", str(one), "--format", "arena", "--db", db)
    assert code == 0 and "judgments: 3 new, 0 duplicate" in out  # before issue 12: 1 new, 2 duplicate
    code, out, _ = run_cli(capsys, "import", str(one), "--format", "arena", "--db", db)
    assert code == 0 and "judgments: 0 new, 3 duplicate" in out
    # Another session's file with the same votes: new observations.
    two = _arena(tmp_path / "two.json", ["model_a", "model_b"])
    code, out, _ = run_cli(capsys, "import", str(two), "--format", "arena", "--db", db)
    assert code == 0 and "judgments: 2 new" in out
    with Store(db) as store:
        verdicts = sorted(s.judgment.verdict.value for s in store.judgments())
    assert verdicts == ["A", "A", "A", "B", "B"]


def _qlora(folder: Path, scores: list[int]) -> Path:
    folder.mkdir()
    path = folder / "m1-vs-m2-gpt-4-reviewer-threeclass.jsonl"
    path.write_text(
        "".join(json.dumps({"question_id": i + 1, "text": "r", "score": s}) + "\n" for i, s in enumerate(scores))
    )
    return path


def test_a_different_machine_verdict_is_a_conflict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.db")
    first = _qlora(tmp_path / "a", [1, 2, 3])
    second = _qlora(tmp_path / "b", [1, 1, 3])  # line 2 disagrees
    assert run_cli(capsys, "import", str(first), "--format", "qlora", "--db", db)[0] == 0
    code, out, err = run_cli(capsys, "import", str(second), "--format", "qlora", "--db", db)
    assert code == 2 and "1 conflicting verdict" in err
    assert f"{second}:2" in err and f"{first}:2" in err and "--conflicts keep" in err
    with Store(db) as store:
        assert len(store.judgments()) == 3  # nothing of the second file
    # The same verdicts again are plain duplicates.
    same = _qlora(tmp_path / "c", [1, 2, 3])
    code, out, _ = run_cli(capsys, "import", str(same), "--format", "qlora", "--db", db)
    assert code == 0 and "judgments: 0 new, 3 duplicate" in out
    # --conflicts keep stores the other verdict as a repeated sample; importing it again adds nothing.
    code, out, _ = run_cli(capsys, "import", str(second), "--format", "qlora", "--db", db, "--conflicts", "keep")
    assert code == 0 and "judgments: 1 new, 2 duplicate, 1 kept as repeated samples" in out
    code, out, _ = run_cli(capsys, "import", str(second), "--format", "qlora", "--db", db)
    assert code == 0 and "judgments: 0 new, 3 duplicate" in out
    with Store(db) as store:
        rows = [s.judgment for s in store.judgments() if s.judgment.prompt_id == "2"]
    assert sorted((j.verdict.value, j.settings.get("sample")) for j in rows) == [("A", 2), ("B", None)]


def test_conflicts_inside_one_import_are_caught_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _qlora(tmp_path / "a", [1])
    second = _qlora(tmp_path / "b", [2])
    code, _, err = run_cli(
        capsys, "import", str(first), str(second), "--format", "qlora", "--db", str(tmp_path / "s.db")
    )
    assert code == 2 and f"{second}:1" in err and f"{first}:1" in err

"""``qlora-eval import`` and ``export``: counts, idempotence, all-or-nothing, round trips, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlora_eval.store import Store
from tests.cli.helpers import run_cli, write_tournament
from tests.interchange.fixtures import write_jsonl, write_qlora


def test_import_counts_new_and_duplicates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_tournament(tmp_path / "reviews", prompts=5)
    db = str(tmp_path / "s.db")
    code, out, _ = run_cli(capsys, "import", str(folder), "--format", "qlora", "--db", db)
    assert code == 0
    assert "read 60 records from 12 files" in out and "judgments: 60 new, 0 duplicate" in out
    code, out, _ = run_cli(capsys, "import", str(folder), "--format", "qlora", "--db", db)
    assert code == 0 and "judgments: 0 new, 60 duplicate" in out
    with Store(db) as store:
        assert store.counts()["judgments"] == 60
        assert set(store.models()) == {"alpha", "bravo", "charlie", "delta"}


def test_bad_line_in_second_file_stores_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.db")
    first = write_qlora(tmp_path, "a", "b", [1, 2, 3])
    # Something already stored must stay exactly as it is (issue 14: this once opened an empty store, so a
    # failed import that wiped or half-wrote the store went unnoticed): store 3 judgments and check they are there.
    assert run_cli(capsys, "import", str(first), "--format", "qlora", "--db", db)[0] == 0
    with Store(db) as store:
        before = store.counts()
        stored_before = sorted((s.key, s.judgment.verdict) for s in store.judgments())
    assert before["judgments"] == 3 and len(stored_before) == 3
    good = write_qlora(tmp_path, "c", "d", [1, 1])
    bad = write_qlora(tmp_path, "e", "f", [1, 2, 7, 1])
    code, _, err = run_cli(capsys, "import", str(good), str(bad), "--format", "qlora", "--db", db)
    assert code == 2
    assert f"{bad}:3:" in err and "expected 1 (A better)" in err
    with Store(db) as store:
        assert store.counts() == before
        assert sorted((s.key, s.judgment.verdict) for s in store.judgments()) == stored_before
        assert set(store.models()) == {"a", "b"}  # nothing of the good second file went in either


def test_store_failure_mid_import_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a failure inside the store write (after prompts and models went in) leaves nothing behind."""
    from qlora_eval.interchange import ImportOptions, read_inputs
    from qlora_eval.workflows.importing import store_imported

    rows = [{"model": "m1", "prompt_id": 1, "prompt": "Hi?", "text": "Hello"}]
    batch = read_inputs([write_jsonl(tmp_path / "a.jsonl", rows)], "answers", ImportOptions())
    with Store(tmp_path / "s.db") as store:
        before = store.counts()

        def boom(*args: object, **kwargs: object) -> int:
            raise RuntimeError("disk full")

        monkeypatch.setattr(store, "add_answers", boom)
        with pytest.raises(RuntimeError):
            store_imported(store, batch)
        assert store.counts() == before


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("malformed", ":2: not valid JSON"),
        ("filename", "file name does not parse; expected <answersA>-vs-<answersB>-<reviewer>-reviewer"),
        ("empty", "holds no reviews"),
        ("score", ":1: field 'score' is 9"),
        ("missing", "no such file or folder"),
    ],
)
def test_bad_input_exits_nonzero_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, expected: str
) -> None:
    path = tmp_path / "a-vs-b-gpt-4-reviewer-threeclass.jsonl"
    if setup == "malformed":
        path.write_text('{"question_id": 1, "score": 1}\n{"question_id": 2, "score": 1\n')
    elif setup == "filename":
        path = tmp_path / "a_vs_b.jsonl"
        path.write_text('{"question_id": 1, "score": 1}\n')
    elif setup == "empty":
        path.write_text("")
    elif setup == "score":
        path.write_text('{"question_id": 1, "score": 9}\n')
    else:
        path = tmp_path / "nope.jsonl"
    db = tmp_path / "s.db"
    code, _, err = run_cli(capsys, "import", str(path), "--format", "qlora", "--db", str(db))
    assert code != 0
    assert str(path) in err and expected in err
    assert not db.exists() or Store(db).counts()["judgments"] == 0


def test_unknown_format_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli(capsys, "import", str(tmp_path), "--format", "csv", "--db", str(tmp_path / "s.db"))
    assert info.value.code == 2
    assert "invalid choice: 'csv'" in capsys.readouterr().err


def test_export_jsonl_reimports_exactly_and_arena(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_tournament(tmp_path / "reviews", prompts=4)
    db1, db2 = str(tmp_path / "one.db"), str(tmp_path / "two.db")
    assert run_cli(capsys, "import", str(folder), "--format", "qlora", "--db", db1)[0] == 0
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    code, _, err = run_cli(capsys, "export", "--db", db1, "--what", "judgments", "--output", str(first))
    assert code == 0 and "exported 48 judgments" in err
    assert run_cli(capsys, "import", str(first), "--format", "jsonl", "--db", db2)[0] == 0
    assert run_cli(capsys, "export", "--db", db2, "--what", "judgments", "--output", str(second))[0] == 0
    assert second.read_bytes() == first.read_bytes()
    code, out, err = run_cli(capsys, "export", "--db", db1, "--what", "judgments", "--format", "arena")
    battles = json.loads(out)
    invalid = sum(1 for line in first.read_text().splitlines() if json.loads(line)["verdict"] == "invalid")
    assert code == 0 and len(battles) == 48 - invalid
    assert {"model_a", "model_b", "winner", "judge", "question_id"} <= set(battles[0])


def test_answers_import_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        {"model": "m1", "prompt_id": 1, "prompt": "Hi?", "text": "Hello"},
        {"model": "m2", "prompt_id": 1, "prompt": "Hi?", "text": "Hey"},
    ]
    db = str(tmp_path / "s.db")
    code, out, _ = run_cli(
        capsys,
        "import",
        str(write_jsonl(tmp_path / "a.jsonl", rows)),
        "--format",
        "answers",
        "--db",
        db,
        "--prompt-set",
        "demo",
    )
    assert code == 0 and "answers: 2 new, 0 duplicate" in out and "prompts: 1 new" in out
    with Store(db) as store:
        assert [p.question for p in store.prompts("demo")] == ["Hi?"]
        assert store.models() == {"m1": "imported:m1", "m2": "imported:m2"}
    code, out, _ = run_cli(capsys, "export", "--db", db, "--what", "answers")
    assert code == 0 and [json.loads(line)["text"] for line in out.splitlines()] == ["Hello", "Hey"]
    code, _, err = run_cli(capsys, "export", "--db", db, "--what", "answers", "--format", "arena")
    assert code == 2 and "battles only" in err

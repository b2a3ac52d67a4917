"""``--rename OLD=NEW`` for every import format: names, answer keys re-pointed, typos and clashes refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlora_eval.cli.main import main
from qlora_eval.errors import ConfigError, InputError
from qlora_eval.interchange import ImportOptions, parse_renames, read_inputs
from qlora_eval.interchange.jsonl import write_records
from qlora_eval.store import Store
from qlora_eval.types import Answer, Judgment, Order, Verdict
from tests.interchange.fixtures import write_jsonl, write_qlora


def test_parse_renames() -> None:
    assert parse_renames(["a=b", " c = d "]) == (("a", "b"), ("c", "d"))
    for bad, match in [
        (["ab"], "expected OLD=NEW"),
        (["=b"], "expected OLD=NEW"),
        (["a="], "expected OLD=NEW"),
        (["a=b", "a=c"], "renamed twice"),
        (["a=x", "b=x"], "the same new name 'x'"),
    ]:
        with pytest.raises(ConfigError, match=match):
            parse_renames(bad)


def test_rename_in_qlora_review_files(tmp_path: Path) -> None:
    path = write_qlora(tmp_path, "answer-gpt35", "answer-bard", [1, 2, 3])
    batch = read_inputs([path], "qlora", ImportOptions(renames=(("answer-gpt35", "chatgpt"),)))
    assert batch.models() == ["answer-bard", "chatgpt"]
    assert {(j.model_a, j.model_b) for j in batch.judgments} == {("chatgpt", "answer-bard")}


def test_rename_gives_answers_new_keys_and_repoints_judgments(tmp_path: Path) -> None:
    answers = [
        Answer("m1", "imported:m1", "vicuna", "1", "h", "one", {}),
        Answer("m2", "imported:m2", "vicuna", "1", "h", "two", {}),
    ]
    judgment = Judgment(
        "gpt-4",
        "m1",
        "m2",
        "vicuna",
        "1",
        Verdict.A,
        Order.FORWARD,
        answer_a_key=answers[0].answer_key,
        answer_b_key=answers[1].answer_key,
    )
    path = tmp_path / "export.jsonl"
    with path.open("w", encoding="utf-8") as out:
        write_records([*answers, judgment], out)
    batch = read_inputs([path], "jsonl", ImportOptions(renames=(("m1", "alpha"),)))
    renamed = next(a for a in batch.answers if a.model == "alpha")
    assert renamed.model_spec == "imported:alpha" and renamed.answer_key != answers[0].answer_key
    (j,) = batch.judgments
    assert (j.model_a, j.answer_a_key, j.answer_b_key) == ("alpha", renamed.answer_key, answers[1].answer_key)


def test_rename_refuses_to_cut_a_link_to_an_answer_not_in_the_import(tmp_path: Path) -> None:
    judgment = Judgment("gpt-4", "m1", "m2", "vicuna", "1", Verdict.A, Order.FORWARD, answer_a_key="k1")
    path = tmp_path / "export.jsonl"
    with path.open("w", encoding="utf-8") as out:
        write_records([judgment], out)
    with pytest.raises(InputError, match="not in this import"):
        read_inputs([path], "jsonl", ImportOptions(renames=(("m1", "alpha"),)))


@pytest.mark.parametrize(
    ("renames", "match"),
    [
        ((("gpt35", "chatgpt"),), r"model\(s\) 'gpt35' that the input does not have; its models are a, b"),
        ((("a", "b"),), r"target\(s\) 'b' already name a model"),
    ],
)
def test_rename_typos_and_clashes_are_errors(tmp_path: Path, renames: tuple[tuple[str, str], ...], match: str) -> None:
    path = write_qlora(tmp_path, "a", "b", [1])
    with pytest.raises(InputError, match=match):
        read_inputs([path], "qlora", ImportOptions(renames=renames))


def test_import_rename_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"model": "m1", "prompt_id": "1", "prompt": "Hi?", "text": "Hello."}]
    path = write_jsonl(tmp_path / "answers.jsonl", rows)
    db = tmp_path / "x.db"
    argv = ["import", str(path), "--format", "answers", "--db", str(db), "--rename", "m1=alpha"]
    assert main(argv) == 0
    with Store(db) as store:
        assert [a.model for a in store.answers()] == ["alpha"]
        assert store.models() == {"alpha": "imported:alpha"}
    assert main(["import", str(path), "--format", "answers", "--db", str(db), "--rename", "m1"]) != 0
    assert "expected OLD=NEW" in capsys.readouterr().err

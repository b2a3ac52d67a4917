"""QLoRA review files: file-name parsing, score mapping, order, and the errors bad files get."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qlora_eval.errors import InputError
from qlora_eval.interchange import ImportOptions, read_inputs
from qlora_eval.interchange.qlora import parse_file_name
from qlora_eval.types import Order, Verdict
from tests.interchange.fixtures import write_qlora

CODE_VERDICT = {1: Verdict.A, 2: Verdict.B, 3: Verdict.TIE, -1: Verdict.INVALID}

# No 'r' or 'w': a generated name can never contain "-reviewer" and confuse the split being tested.
NAME = st.text(alphabet="abcdefgsv0123456789._-", min_size=1, max_size=24).filter(
    lambda s: (s + "-vs-").find("-vs-") == len(s) and not s.startswith(".")
)
SCORE = st.sampled_from([1, 2, 3, -1, "1", "2", "3", "-1"])


@settings(max_examples=60, deadline=None)
@given(model_a=NAME, model_b=NAME, scores=st.lists(SCORE, min_size=1, max_size=30), threeclass=st.booleans())
def test_generated_files_round_trip_counts_and_verdicts(
    model_a: str, model_b: str, scores: list[int | str], threeclass: bool
) -> None:
    if model_a == model_b:
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = write_qlora(Path(tmp), model_a, model_b, scores, threeclass=threeclass)
        batch = read_inputs([tmp], "qlora", ImportOptions())
    assert len(batch.judgments) == len(scores)
    assert [j.verdict for j in batch.judgments] == [CODE_VERDICT[int(s)] for s in scores]
    for i, j in enumerate(batch.judgments):
        assert (j.model_a, j.model_b, j.judge, j.prompt_set) == (model_a, model_b, "gpt-4", "vicuna")
        assert j.prompt_id == str(1 + i)
        assert j.order is Order.of(model_a, model_b)
    assert batch.sources[0].path.endswith(path.name)
    assert len({j.judgment_key for j in batch.judgments}) == len(scores)


def test_real_repository_names_split_on_the_reviewer() -> None:
    name = "gpt-4-oa-generations-vs-gpt-3.5-oa-generations-gpt-4-reviewer-threeclass.jsonl"
    assert parse_file_name(name, "gpt-4") == ("gpt-4-oa-generations", "gpt-3.5-oa-generations", True)
    name = "13b-guanaco-vicuna-generations-topp0.9-temp0.7-vs-answer-bard-gpt-4-reviewer.jsonl"
    assert parse_file_name(name, "gpt-4") == ("13b-guanaco-vicuna-generations-topp0.9-temp0.7", "answer-bard", False)
    assert parse_file_name("a-vs-b-claude-2-reviewer.jsonl", "claude-2") == ("a", "b", False)


@pytest.mark.parametrize(
    "name",
    ["a-b-gpt-4-reviewer.jsonl", "a-vs-b.jsonl", "a-vs-b-gpt-4-reviewer.json", "a-vs-b-gpt-3-reviewer.jsonl"],
)
def test_unparsable_file_name_is_refused_with_the_pattern(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text('{"question_id": 1, "score": 1}\n')
    with pytest.raises(InputError, match=r"<answersA>-vs-<answersB>-<reviewer>-reviewer") as info:
        read_inputs([tmp_path / name], "qlora", ImportOptions())
    assert name in str(info.value)


def test_score_pairs_in_two_score_files(tmp_path: Path) -> None:
    path = write_qlora(tmp_path, "m1", "m2", [[8, 9], [9, 7.5], [6, 6], [-1, -1]], threeclass=False)
    verdicts = [j.verdict for j in read_inputs([path], "qlora", ImportOptions()).judgments]
    assert verdicts == [Verdict.B, Verdict.A, Verdict.TIE, Verdict.INVALID]


@pytest.mark.parametrize("score", [0, 4, "yes", None, 1.5, True, [1, 2]])
def test_score_out_of_range_names_file_and_line(tmp_path: Path, score: object) -> None:
    path = write_qlora(tmp_path, "m1", "m2", [1, 2, score, 3])
    with pytest.raises(InputError, match=r"expected 1 \(A better\), 2 \(B better\), 3 \(tie\) or -1") as info:
        read_inputs([path], "qlora", ImportOptions())
    assert (info.value.source, info.value.line) == (str(path), 3)
    assert f"{path}:3:" in str(info.value)


def test_malformed_line_and_missing_id(tmp_path: Path) -> None:
    path = tmp_path / "m1-vs-m2-gpt-4-reviewer-threeclass.jsonl"
    path.write_text('{"question_id": 1, "score": 1}\n{"question_id": 2, "score": \n')
    with pytest.raises(InputError, match="not valid JSON") as info:
        read_inputs([path], "qlora", ImportOptions())
    assert info.value.line == 2
    path.write_text('{"question_id": 1, "score": 1}\n\n{"score": 2}\n')
    with pytest.raises(InputError, match="question_id") as info:
        read_inputs([path], "qlora", ImportOptions())
    assert info.value.line == 3


def test_oa_files_use_message_id_and_prompt_set_option(tmp_path: Path) -> None:
    path = tmp_path / "m1-vs-m2-gpt-4-reviewer-threeclass.jsonl"
    path.write_text('{"message_id": "0016-abc", "score": 2}\n')
    (j,) = read_inputs([path], "qlora", ImportOptions(prompt_set="oa")).judgments
    assert (j.prompt_set, j.prompt_id, j.verdict) == ("oa", "0016-abc", Verdict.B)


def test_empty_inputs_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m1-vs-m2-gpt-4-reviewer-threeclass.jsonl"
    path.write_text("\n  \n")
    with pytest.raises(InputError, match="no reviews"):
        read_inputs([path], "qlora", ImportOptions())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no qlora files"):
        read_inputs([empty], "qlora", ImportOptions())
    with pytest.raises(InputError, match="no input"):
        read_inputs([], "qlora", ImportOptions())


def test_folder_reads_matching_files_sorted(tmp_path: Path) -> None:
    write_qlora(tmp_path, "zeta", "alpha", [1])
    write_qlora(tmp_path, "alpha", "zeta", [2, 2])
    (tmp_path / "notes.jsonl").write_text("not a review file\n")
    batch = read_inputs([tmp_path], "qlora", ImportOptions())
    assert [s.path for s in batch.sources] == sorted(s.path for s in batch.sources)
    assert [j.order for j in batch.judgments] == [Order.FORWARD, Order.FORWARD, Order.SWAPPED]

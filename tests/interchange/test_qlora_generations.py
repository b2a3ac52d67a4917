"""The paper's generation files (``../shared/data/qlora/generations/vicuna``), read in place, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlora_eval.errors import InputError
from qlora_eval.interchange import ImportOptions, read_inputs
from qlora_eval.interchange.qlora_generations import CUT_MARKER, shortuuid_of
from tests.interchange.fixtures import write_jsonl

GUANACO_7B = "7b-guanaco-vicuna-generations-topp0.9-temp0.7"
EXPECTED_MODELS = sorted(
    [f"{size}-guanaco-vicuna-generations-topp0.9-temp0.7" for size in ("7b", "13b", "30b", "65b")]
    + ["answer-bard", "answer-gpt35", "answer-gpt4", "answer-vicuna-13b"]
)


@pytest.fixture(scope="module")
def generations(shared_data: Path) -> Path:
    folder = shared_data / "qlora" / "generations" / "vicuna"
    if not folder.is_dir():
        pytest.skip(f"the QLoRA paper files are not at {folder}")
    return folder


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_all_eight_files_give_80_answers_each_named_like_the_review_files(generations: Path, shared_data: Path) -> None:
    batch = read_inputs([generations], "qlora-generations", ImportOptions(prompt_set="vicuna", data_dir=shared_data))
    assert len(batch.sources) == 8
    assert batch.models() == EXPECTED_MODELS
    for model in EXPECTED_MODELS:
        answers = [a for a in batch.answers if a.model == model]
        assert len(answers) == 80, model
        assert sorted(int(a.prompt_id) for a in answers) == list(range(1, 81))
        assert {a.model_spec for a in answers} == {f"imported:{model}"}
    assert len({a.answer_key for a in batch.answers}) == 640
    assert {(p.prompt.prompt_set, p.set_version) for p in batch.prompts} == {("vicuna", "qlora-2023-05")}
    # Every answer is linked to its prompt's content in the set.
    by_id = {p.prompt.prompt_id: p.prompt for p in batch.prompts}
    assert all(a.prompt_hash == by_id[a.prompt_id].content_hash for a in batch.answers)


def test_baseline_text_is_kept_whole_with_its_answer_id(generations: Path, shared_data: Path) -> None:
    path = generations / "answer_gpt35.jsonl"
    batch = read_inputs([path], "qlora-generations", ImportOptions(data_dir=shared_data))
    row = _rows(path)[0]
    answer = next(a for a in batch.answers if a.prompt_id == "1")
    assert answer.text == row["text"]  # multi-line, byte for byte
    assert answer.text.count("\n") == 16
    ids = {i.answer_key: i.external_id for i in batch.answer_ids}
    assert ids[answer.answer_key] == "BZGowHM7L3RvtWRktKZjLT" == row["answer_id"]
    assert len(batch.answer_ids) == 80


def test_guanaco_answer_is_the_truncated_generation_with_the_review_scripts_id(
    generations: Path, shared_data: Path
) -> None:
    path = generations / "65b-guanaco-vicuna-generations-topp0.9-temp0.7.jsonl"
    rows = {str(r["question_id"]): r for r in _rows(path)}
    batch = read_inputs([path], "qlora-generations", ImportOptions(data_dir=shared_data))
    answers = {a.prompt_id: a for a in batch.answers}
    # Prompt 3: the model ran on into a new "### Human:" turn; the reviewer saw generation_truncated.
    assert rows["3"]["generation"] != rows["3"]["generation_truncated"]
    assert answers["3"].text == rows["3"]["generation_truncated"]
    assert "### Human:" not in answers["3"].text
    assert all(a.text == rows[a.prompt_id]["generation_truncated"] for a in batch.answers)
    ids = {i.answer_key: i.external_id for i in batch.answer_ids}
    assert all(ids[a.answer_key] == shortuuid_of(a.text) for a in batch.answers)


def test_guanaco_ids_match_the_ids_the_paper_s_relative_reviews_name(generations: Path, shared_data: Path) -> None:
    path = generations / f"{GUANACO_7B}.jsonl"
    batch = read_inputs([path], "qlora-generations", ImportOptions(data_dir=shared_data))
    ours = {i.external_id for i in batch.answer_ids}
    reviews = shared_data / "qlora" / "relative-gpt-3.5" / f"gpt-3.5-vs-{GUANACO_7B}-gpt4-reviewer.jsonl"
    named = {str(r["answer1_id"]) for r in _rows(reviews)}  # Guanaco was shown first in this file
    assert named == ours


def test_cut_marker_ends_the_answer(tmp_path: Path, shared_data: Path) -> None:
    row = {
        "question_id": 1,
        "text": "How can I improve my time management skills?",
        "category": "generic",
        "prompt": "### Human: How can I improve my time management skills? ### Assistant:",
        "generation": "unused",
        "generation_truncated": f"Plan ahead.\nUse lists. {CUT_MARKER} assistant. ### Human: more",
    }
    path = write_jsonl(tmp_path / "m_1.jsonl", [row])
    batch = read_inputs([path], "qlora-generations", ImportOptions(data_dir=shared_data))
    assert [a.text for a in batch.answers] == ["Plan ahead.\nUse lists. "]
    assert batch.models() == ["m-1"]


def test_unknown_field_set_lists_both_layouts_with_file_and_line(tmp_path: Path, shared_data: Path) -> None:
    good = {"answer_id": "x1", "model_id": "m", "question_id": 1, "text": "hi"}
    bad = {"question_id": 2, "answer": "hello", "model": "m"}
    path = write_jsonl(tmp_path / "answer_m.jsonl", [good, bad])
    with pytest.raises(InputError) as info:
        read_inputs([path], "qlora-generations", ImportOptions(data_dir=shared_data))
    message = str(info.value)
    assert message.startswith(f"{path}:2: unknown field set answer, model, question_id;")
    assert "question_id, text, category, prompt, generation, generation_truncated" in message
    assert "answer_id, model_id, question_id, text" in message


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"answer_id": "x", "model_id": "m", "question_id": 999, "text": "a"}, "not in prompt set 'vicuna'"),
        (
            {
                "question_id": 1,
                "text": "What is love?",
                "category": "generic",
                "prompt": "p",
                "generation": "g",
                "generation_truncated": "g",
            },
            "is not prompt vicuna/1's question",
        ),
    ],
)
def test_rows_that_do_not_fit_the_prompt_set_are_refused(
    tmp_path: Path, shared_data: Path, row: dict[str, object], expected: str
) -> None:
    path = write_jsonl(tmp_path / "answer_m.jsonl", [row])
    with pytest.raises(InputError, match=expected) as info:
        read_inputs([path], "qlora-generations", ImportOptions(data_dir=shared_data))
    assert f"{path}:1:" in str(info.value)


def test_one_answer_per_question(tmp_path: Path, shared_data: Path) -> None:
    row = {"answer_id": "x", "model_id": "m", "question_id": 1, "text": "a"}
    path = write_jsonl(tmp_path / "answer_m.jsonl", [row, {**row, "answer_id": "y"}])
    with pytest.raises(InputError, match=r":2: question_id '1' already answered on line 1"):
        read_inputs([path], "qlora-generations", ImportOptions(data_dir=shared_data))


def test_oa_answers_are_linked_to_multi_turn_prompts_not_flattened(tmp_path: Path, shared_data: Path) -> None:
    oa_rows = _rows(shared_data / "oa_questions.jsonl")
    source = next(r for r in oa_rows if str(r["input"]).count("### Human:") >= 2)
    row = {"answer_id": "oa-1", "model_id": "gpt-3.5", "question_id": source["question_id"], "text": "Una respuesta."}
    path = write_jsonl(tmp_path / "answer_gpt35.jsonl", [row])
    batch = read_inputs([path], "qlora-generations", ImportOptions(prompt_set="oa", data_dir=shared_data))
    (answer,) = batch.answers
    (imported,) = batch.prompts
    assert (answer.prompt_set, answer.prompt_id) == ("oa", str(source["question_id"]))
    assert len(imported.prompt.turns) >= 3  # earlier user and assistant turns kept, then the question
    assert answer.prompt_hash == imported.prompt.content_hash
    assert [i.external_id for i in batch.answer_ids] == ["oa-1"]

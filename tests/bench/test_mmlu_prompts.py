"""MMLU data loading and the two prompt formats (golden strings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlora_eval.bench.mmlu import (
    SUPERCATEGORIES,
    MmluItem,
    Mode,
    aggregate,
    build_prompts,
    harness_prompt,
    items_from_rows,
    load_hub_split,
    load_qlora_file,
    qlora_prompt,
    shots_in_qlora_input,
)
from qlora_eval.errors import ConfigError, InputError


def _item(subject: str, question: str, answer: int, tag: str = "") -> MmluItem:
    return MmluItem(
        subject=subject,
        question=question,
        choices=(f"a{tag}", f"b{tag}", f"c{tag}", f"d{tag}"),
        answer=answer,
    )


Q = _item("high_school_physics", "What is 1+1?", 1)
S1 = _item("high_school_physics", "Shot one?", 2, "1")
S2 = _item("high_school_physics", "  Shot two?  ", 0, "2")


def test_supercategories_cover_the_57_subjects() -> None:
    assert len(SUPERCATEGORIES) == 57
    counts = {c: list(SUPERCATEGORIES.values()).count(c) for c in set(SUPERCATEGORIES.values())}
    assert counts == {"STEM": 18, "humanities": 13, "social sciences": 12, "other (business, health, misc.)": 14}


def test_qlora_prompt_golden() -> None:
    assert qlora_prompt(Q, []) == (
        "The following are multiple choice questions (with answers) about  high school physics.\n\n"
        "What is 1+1?\nA. a\nB. b\nC. c\nD. d\nAnswer:"
    )
    assert qlora_prompt(Q, [S1, S2]) == (
        "The following are multiple choice questions (with answers) about  high school physics.\n\n"
        "Shot one?\nA. a1\nB. b1\nC. c1\nD. d1\nAnswer: C\n\n"
        "  Shot two?  \nA. a2\nB. b2\nC. c2\nD. d2\nAnswer: A\n\n"
        "What is 1+1?\nA. a\nB. b\nC. c\nD. d\nAnswer:"
    )


def test_harness_prompt_golden() -> None:
    assert harness_prompt(Q, []) == (
        "The following are multiple choice questions (with answers) about high school physics.\n\n"
        "What is 1+1?\nA. a\nB. b\nC. c\nD. d\nAnswer:"
    )
    # lm-eval: question.strip(), target delimiter " ", fewshot delimiter "\n\n"
    assert harness_prompt(Q, [S1, S2]) == (
        "The following are multiple choice questions (with answers) about high school physics.\n\n"
        "Shot one?\nA. a1\nB. b1\nC. c1\nD. d1\nAnswer: C\n\n"
        "Shot two?\nA. a2\nB. b2\nC. c2\nD. d2\nAnswer: A\n\n"
        "What is 1+1?\nA. a\nB. b\nC. c\nD. d\nAnswer:"
    )


def test_real_qlora_file_roundtrips_through_the_prompt_builder(shared_data: Path) -> None:
    """Parsing each record and rebuilding its prompt gives the file's text back, byte for byte."""
    items = load_qlora_file(shared_data / "mmlu_zero_shot_val.jsonl")
    assert len(items) == 1531
    assert len({i.subject for i in items}) == 57
    assert all(qlora_prompt(i, []) == i.qlora_input for i in items)
    assert "about  abstract algebra." in (items[0].qlora_input or "")  # the two spaces
    assert all(shots_in_qlora_input(i.qlora_input or "") == 0 for i in items)


def test_qlora_file_json_array_and_five_shot_detection(tmp_path: Path) -> None:
    record = {"subject": "high_school_physics", "input": qlora_prompt(Q, [S1, S2, S1, S2, S1]), "output": "B"}
    path = tmp_path / "five.json"
    path.write_text(json.dumps([record, {**record, "output": "D"}]))
    items = load_qlora_file(path)
    assert [i.answer for i in items] == [1, 3]
    assert items[0].question == "What is 1+1?" and items[0].choices == ("a", "b", "c", "d")
    assert shots_in_qlora_input(items[0].qlora_input or "") == 5
    assert build_prompts(items, Mode.QLORA, 5, None) == [record["input"], record["input"]]
    with pytest.raises(ConfigError, match="carries 5 shots"):
        build_prompts(items, Mode.QLORA, 0, None)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"subject": "astrology", "input": "x\\nA. 1\\nB. 2\\nC. 3\\nD. 4\\nAnswer:", "output": "A"}', "unknown MMLU"),
        ('{"subject": "virology", "input": "x\\nA. 1\\nB. 2\\nC. 3\\nD. 4\\nAnswer:", "output": "E"}', "one of A, B"),
        ('{"subject": "virology", "input": "no choices here", "output": "A"}', "does not end with"),
        ('{"subject": "virology", "output": "A"}', "'input' is missing"),
        ("{not json", "invalid JSON"),
    ],
)
def test_bad_records_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    good = json.dumps({"subject": "virology", "input": qlora_prompt(_item("virology", "q", 0), []), "output": "A"})
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(InputError, match=message) as info:
        load_qlora_file(path)
    assert info.value.line == 2 and info.value.source == str(path)


def _hub_rows(subject: str, n: int, tag: str) -> list[dict[str, object]]:
    return [
        {"question": f"{tag} question {k}?", "subject": subject, "choices": ["w", "x", "y", "z"], "answer": k % 4}
        for k in range(n)
    ]


def test_hub_format_from_local_parquet(tmp_path: Path) -> None:
    """The cais/mmlu layout (all/<split>-*.parquet) through datasets, no network; 5 first dev shots."""
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "mmlu" / "all"
    folder.mkdir(parents=True)
    test_rows = _hub_rows("virology", 3, "test") + _hub_rows("anatomy", 2, "test")
    dev_rows = _hub_rows("anatomy", 6, "dev") + _hub_rows("virology", 6, "dev")
    datasets.Dataset.from_list(test_rows).to_parquet(str(folder / "test-00000-of-00001.parquet"))
    datasets.Dataset.from_list(dev_rows).to_parquet(str(folder / "dev-00000-of-00001.parquet"))

    items = load_hub_split(str(tmp_path / "mmlu"), "test")
    dev = load_hub_split(str(tmp_path / "mmlu"), "dev")
    assert [(i.subject, i.answer) for i in items] == [
        ("virology", 0), ("virology", 1), ("virology", 2), ("anatomy", 0), ("anatomy", 1)
    ]  # fmt: skip
    prompts = build_prompts(items, Mode.HARNESS, 5, dev)
    first = prompts[0]
    assert first.startswith("The following are multiple choice questions (with answers) about virology.\n\n")
    assert first.count("Answer: ") == 5 and first.endswith("test question 0?\nA. w\nB. x\nC. y\nD. z\nAnswer:")
    assert "dev question 4?" in first and "dev question 5?" not in first  # the first five dev rows
    assert "anatomy" not in first
    with pytest.raises(InputError, match="no 'validation' parquet"):
        load_hub_split(str(tmp_path / "mmlu"), "validation")


def test_hub_rows_are_checked() -> None:
    rows = _hub_rows("virology", 2, "t")
    rows[1]["answer"] = 4
    with pytest.raises(InputError, match=r"'answer' must be 0\.\.3") as info:
        items_from_rows(rows, "hub[test]")
    assert info.value.line == 2


def test_five_shots_without_dev_split_is_an_error() -> None:
    with pytest.raises(ConfigError, match="dev questions"):
        build_prompts([Q], Mode.HARNESS, 5, None)


def test_aggregate_micro_macro_and_supercategories() -> None:
    items = [_item("virology", "q", 0)] * 3 + [_item("astronomy", "q", 1)]
    result = aggregate(items, [0, 0, 3, 1], Mode.QLORA, 0)
    assert result.accuracy == pytest.approx(3 / 4)
    assert result.macro_accuracy == pytest.approx((2 / 3 + 1) / 2)
    assert result.subjects["virology"].n == 3
    assert result.supercategories["STEM"].accuracy == 1.0
    assert result.to_dict()["primary"] == "macro_accuracy"
    assert aggregate(items, [0, 0, 3, 1], Mode.HARNESS, 0).primary == "accuracy"

"""FastChat, Arena, answers and the project's own JSONL: mapping, round trips and bad input."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qlora_eval.errors import ConfigError, InputError
from qlora_eval.interchange import ImportOptions, arena, jsonl, read_inputs
from qlora_eval.types import Answer, Judgment, Order, Verdict
from tests.interchange.fixtures import write_jsonl


def fastchat_row(winner1: str, winner2: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "question_id": 81,
        "model_1": "vicuna-13b",
        "model_2": "alpaca-13b",
        "g1_winner": winner1,
        "g2_winner": winner2,
        "judge": ["gpt-4", "pair-v2"],
        "g1_judgment": "[[A]]",
        "g2_judgment": "[[B]]",
        "turn": 1,
    }
    row.update(extra)
    return row


def test_fastchat_line_gives_both_orders(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "gpt-4_pair.jsonl",
        [fastchat_row("model_1", "model_1"), fastchat_row("tie", "error", question_id=82, turn=2)],
    )
    judgments = read_inputs([path], "fastchat", ImportOptions()).judgments
    shown = [(j.model_a, j.model_b, j.verdict, j.prompt_id) for j in judgments]
    assert shown == [
        ("vicuna-13b", "alpaca-13b", Verdict.A, "81"),
        ("alpaca-13b", "vicuna-13b", Verdict.B, "81"),  # game 2 shows model_2 first; model_1 still won
        ("vicuna-13b", "alpaca-13b", Verdict.TIE, "82-turn2"),
        ("alpaca-13b", "vicuna-13b", Verdict.INVALID, "82-turn2"),
    ]
    assert {j.judge for j in judgments} == {"gpt-4"}
    assert judgments[0].settings == {"judge_prompt": "pair-v2", "game": 1}
    assert judgments[0].order is Order.SWAPPED and judgments[1].order is Order.FORWARD
    assert judgments[0].prompt_set == "mt_bench"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"g1_winner": "model_3"}, "g1_winner"),
        ({"judge": 4}, "judge"),
        ({"model_2": "vicuna-13b"}, "two different models"),
        ({"turn": 0}, "turn"),
    ],
)
def test_fastchat_bad_values(tmp_path: Path, change: dict[str, object], message: str) -> None:
    path = write_jsonl(tmp_path / "j.jsonl", [fastchat_row("tie", "tie"), fastchat_row("tie", "tie", **change)])
    with pytest.raises(InputError, match=message) as info:
        read_inputs([path], "fastchat", ImportOptions())
    assert info.value.line == 2 and f"{path}:2:" in str(info.value)


def test_arena_json_array_and_jsonl(tmp_path: Path) -> None:
    battles = [
        {"model_a": "x", "model_b": "y", "winner": "model_a", "judge": "arena_user_1", "question_id": "q1"},
        {"model_a": "y", "model_b": "x", "winner": "tie (bothbad)"},
        {"model_a": "y", "model_b": "x", "winner": "tie"},
    ]
    array = tmp_path / "battles.json"
    array.write_text(json.dumps(battles, indent=2))
    lines = write_jsonl(tmp_path / "battles.jsonl", battles)
    for path in (array, lines):
        judgments = read_inputs([path], "arena", ImportOptions()).judgments
        assert [j.verdict for j in judgments] == [Verdict.A, Verdict.BOTH_BAD, Verdict.TIE]
        assert [j.judge for j in judgments] == ["arena_user_1", "arena-human", "arena-human"]
        assert judgments[0].prompt_id == "q1" and judgments[1].prompt_id.startswith(path.name + ":")
        assert judgments[1].order is Order.SWAPPED


def test_arena_array_error_names_the_line_of_the_element(tmp_path: Path) -> None:
    path = tmp_path / "battles.json"
    rows = [{"model_a": "x", "model_b": "y", "winner": "model_a"}, {"model_a": "x", "model_b": "y", "winner": "A"}]
    path.write_text(json.dumps(rows, indent=2))
    with pytest.raises(InputError, match="winner") as info:
        read_inputs([path], "arena", ImportOptions())
    assert info.value.line == 7  # the second object starts on line 7 of the indented array
    path.write_text('[{"model_a": "x", "model_b": "y", "winner": "tie"},\n 5]')
    with pytest.raises(InputError, match="expected a JSON object") as info:
        read_inputs([path], "arena", ImportOptions())
    assert info.value.line == 2


def test_arena_export_is_readable_by_the_arena_importer(tmp_path: Path) -> None:
    judgments = [
        Judgment("gpt-4", "b", "a", "vicuna", "1", Verdict.A, Order.SWAPPED),
        Judgment("gpt-4", "a", "b", "vicuna", "2", Verdict.INVALID, Order.FORWARD),
        Judgment("gpt-4", "a", "b", "vicuna", "3", Verdict.BOTH_BAD, Order.FORWARD),
    ]
    out = io.StringIO()
    assert arena.write_judgments(judgments, out) == (2, 1)
    path = tmp_path / "export.json"
    path.write_text(out.getvalue())
    back = read_inputs([path], "arena", ImportOptions()).judgments
    assert [(j.model_a, j.model_b, j.verdict, j.prompt_id) for j in back] == [
        ("b", "a", Verdict.A, "1"),
        ("a", "b", Verdict.BOTH_BAD, "3"),
    ]


def test_answers_rows_become_answers_and_prompts(tmp_path: Path) -> None:
    rows = [
        {"model": "m1", "prompt_id": 1, "prompt": "Hi?", "text": "Hello"},
        {"model": "m2", "prompt_id": 1, "prompt": "Hi?", "text": ""},
        {"model": "m1", "prompt_id": "2", "prompt": "Why?", "text": "Because"},
    ]
    batch = read_inputs([write_jsonl(tmp_path / "a.jsonl", rows)], "answers", ImportOptions(prompt_set="demo"))
    assert [(a.model, a.prompt_id, a.text, a.model_spec) for a in batch.answers] == [
        ("m1", "1", "Hello", "imported:m1"),
        ("m2", "1", "", "imported:m2"),
        ("m1", "2", "Because", "imported:m1"),
    ]
    assert [p.prompt.question for p in batch.prompts] == ["Hi?", "Why?"]
    assert batch.answers[0].prompt_hash == batch.prompts[0].prompt.content_hash


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"model": "m1", "prompt_id": 1, "prompt": "Hi?", "text": "again"}, "already answered"),
        ({"model": "m2", "prompt_id": 1, "prompt": "Hello?", "text": "x"}, "different 'prompt' text"),
        ({"model": "m2", "prompt_id": 1, "prompt": "Hi?"}, "missing field 'text'"),
        ({"model": "", "prompt_id": 1, "prompt": "Hi?", "text": "x"}, "'model' must not be empty"),
        ({"model": "m2", "prompt_id": [1], "prompt": "Hi?", "text": "x"}, "integer id"),
    ],
)
def test_answers_bad_rows(tmp_path: Path, second: dict[str, object], message: str) -> None:
    first = {"model": "m1", "prompt_id": 1, "prompt": "Hi?", "text": "Hello"}
    path = write_jsonl(tmp_path / "a.jsonl", [first, second])
    with pytest.raises(InputError, match=message) as info:
        read_inputs([path], "answers", ImportOptions())
    assert info.value.line == 2


TEXT = st.text(min_size=1, max_size=12)
# Names (model, judge) are free text without control or bidi characters: those are refused on import (issue 14).
NAME = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs"),
        blacklist_characters="".join(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])),
    ),
    min_size=1,
    max_size=12,
)
JUDGMENTS = st.builds(
    Judgment,
    judge=NAME,
    model_a=st.just("model-a"),
    model_b=st.sampled_from(["model-b", "<script>alert(1)</script>", "ünï"]),
    prompt_set=TEXT,
    prompt_id=TEXT,
    verdict=st.sampled_from(Verdict),
    order=st.sampled_from(Order),
    template_hash=st.text(max_size=8),
    answer_a_key=st.none() | TEXT,
    answer_b_key=st.none() | TEXT,
    rationale=st.text(max_size=40),
    settings=st.dictionaries(TEXT, st.integers() | st.booleans() | st.text(max_size=5), max_size=3),
    cost_usd=st.floats(min_value=0, max_value=10, allow_nan=False),
    latency_s=st.none() | st.floats(min_value=0, max_value=100, allow_nan=False),
    prompt_tokens=st.none() | st.integers(0, 10_000),
    completion_tokens=st.none() | st.integers(0, 10_000),
    source=st.none() | TEXT,
    created_at=st.just("2024-05-01T12:00:00+00:00"),
)
ANSWERS = st.builds(
    Answer,
    model=NAME,
    model_spec=TEXT,
    prompt_set=TEXT,
    prompt_id=TEXT,
    prompt_hash=TEXT,
    text=st.text(max_size=40),
    settings=st.dictionaries(TEXT, st.floats(allow_nan=False, allow_infinity=False), max_size=3),
    prompt_tokens=st.none() | st.integers(0, 100),
    answer_tokens=st.none() | st.integers(0, 100),
    latency_s=st.none() | st.floats(min_value=0, max_value=10, allow_nan=False),
)


@settings(max_examples=40, deadline=None)
@given(
    judgments=st.lists(JUDGMENTS, min_size=1, max_size=8),
    # The store holds one answer per key, so an export never repeats a key (an import refuses conflicting ones).
    answers=st.lists(ANSWERS, max_size=5, unique_by=lambda a: a.answer_key),
)
def test_jsonl_round_trip_is_exact(judgments: list[Judgment], answers: list[Answer]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.jsonl"
        with path.open("w", encoding="utf-8") as out:
            jsonl.write_records([*judgments, *answers], out)
        batch = read_inputs([path], "jsonl", ImportOptions())
        assert list(batch.judgments) == judgments
        assert [a for a in batch.answers] == answers
        again = Path(tmp) / "again.jsonl"
        with again.open("w", encoding="utf-8") as out:
            jsonl.write_records([*batch.judgments, *batch.answers], out)
        assert again.read_bytes() == path.read_bytes()


def test_jsonl_refuses_unknown_and_missing_fields(tmp_path: Path) -> None:
    row = jsonl.judgment_to_dict(Judgment("j", "a", "b", "s", "1", Verdict.A, Order.FORWARD))
    path = write_jsonl(tmp_path / "x.jsonl", [row, {**row, "verdikt": "A"}])
    with pytest.raises(InputError, match=r"unknown field.*verdikt") as info:
        read_inputs([path], "jsonl", ImportOptions())
    assert info.value.line == 2
    del row["verdict"]
    write_jsonl(path, [row])
    with pytest.raises(InputError, match=r"missing field.*verdict"):
        read_inputs([path], "jsonl", ImportOptions())
    with pytest.raises(ConfigError, match="--prompt-set does not apply"):
        read_inputs([path], "jsonl", ImportOptions(prompt_set="vicuna"))


def test_unknown_format_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown format 'csv'; expected one of qlora, fastchat"):
        read_inputs([tmp_path], "csv", ImportOptions())

"""The Arena reader's fast path (issue 18: a million battles) accepts and refuses exactly what the
row-by-row reader did. Lives here because the rating-speed work owns that fast path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlora_eval.errors import InputError
from qlora_eval.interchange import ImportOptions, arena
from qlora_eval.interchange.base import Row, iter_jsonl, read_text
from qlora_eval.types import Judgment, Order


def _reference_read(path: Path) -> list[tuple[str, str, str, str, str, str]]:
    """The previous reader: iter_jsonl + Row checks on every line."""
    out = []
    for number, data in iter_jsonl(path, read_text(path)):
        row = Row(data, path, number)
        model_a, model_b = row.string("model_a"), row.string("model_b")
        if model_a == model_b:
            raise row.error(f"model_a and model_b are both {model_a!r}; expected two different models")
        verdict = row.choice("winner", arena._WINNERS)
        prompt_id = row.ident("question_id") if row.has("question_id") else f"{path.name}:{number}"
        judge = row.string("judge") if row.has("judge") else arena.DEFAULT_JUDGE
        out.append((judge, model_a, model_b, prompt_id, verdict.value, Order.of(model_a, model_b).value))
    return out


def _fields(j: Judgment) -> tuple[str, str, str, str, str, str]:
    return (j.judge, j.model_a, j.model_b, j.prompt_id, j.verdict.value, j.order.value)


GOOD = {"model_a": "x", "model_b": "y", "winner": "model_a"}
CASES = [
    [GOOD, {**GOOD, "question_id": 7, "judge": "u1"}, {**GOOD, "winner": "tie (bothbad)", "question_id": "q"}],
    ["  " + json.dumps(GOOD) + " \t\r", "", "   ", json.dumps({**GOOD, "judge": None, "question_id": None})],
    [GOOD, "1"],
    [GOOD, "[1]"],
    [GOOD, json.dumps(GOOD) + ","],
    [GOOD, json.dumps(GOOD) + " " + json.dumps(GOOD)],
    [GOOD, '{"model_a": "x", '],
    [{**GOOD, "question_id": True}],
    [{**GOOD, "question_id": " "}],
    [{**GOOD, "judge": ""}],
    [{**GOOD, "judge": 3}],
    [{**GOOD, "model_b": "x"}],
    [{**GOOD, "model_a": " "}],
    [{**GOOD, "winner": "A"}],
    [{**GOOD, "winner": ["model_a"]}],
    [{"model_a": "x", "winner": "tie"}],
    [{**GOOD, "model_a": 1}],
    ["\u00a0" + json.dumps(GOOD)],  # no-break space: not JSON whitespace
    [json.dumps(GOOD) + "\u2028"],
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_fast_reader_matches_row_by_row_reader(case: int, tmp_path: Path) -> None:
    path = tmp_path / "battles.jsonl"
    lines = [line if isinstance(line, str) else json.dumps(line) for line in CASES[case]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        expected: list[tuple[str, ...]] | str = list(_reference_read(path))
    except InputError as exc:
        expected = str(exc)
    try:
        got: list[tuple[str, ...]] | str = [_fields(j) for j in arena.read(path, ImportOptions()).judgments]
    except InputError as exc:
        got = str(exc)
    assert got == expected

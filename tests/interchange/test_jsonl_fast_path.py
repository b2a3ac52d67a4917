"""iter_jsonl's scanner fast path accepts and refuses exactly what json.loads line by line does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlora_eval.errors import InputError
from qlora_eval.interchange.base import iter_jsonl

LINES = [
    '{"a": 1}',
    '  {"a": [1, 2]}\t\r',
    '{"a": NaN, "b": -Infinity}',
    '{"a": "\\u2028 \\ud83d\\ude00"}',
    '{"a": 1} {"b": 2}',
    '{"a": 1},',
    "[1, 2]",
    '"text"',
    "\ufeff{}",
    " \ufeff{}",
    "{\"a\": 'x'}",
    '{"a": 1',
    "\x0c",
    "   ",
    "",
    "{}\x0c",
    '{"a": {"b": {}}}',
]


def _expected(line: str) -> object:
    """What the plain reader gives for one line: skipped, the object, or the error message."""
    if not line.strip():
        return "skipped"
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    return value if isinstance(value, dict) else f"got {type(value).__name__}"


@pytest.mark.parametrize("line", LINES)
def test_each_line_as_json_loads_reads_it(line: str) -> None:
    path = Path("f.jsonl")
    text = "\n" + line + "\n"  # on line 2
    expected = _expected(line)
    try:
        got: object = list(iter_jsonl(path, text))
    except InputError as exc:
        assert exc.line == 2
        assert isinstance(expected, str) and expected in str(exc)
        return
    assert got == ([] if expected == "skipped" else [(2, expected)])

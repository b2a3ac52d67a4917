"""Golden tests of the verdict parser: lenient about decoration, strict about content."""

from __future__ import annotations

import pytest

from qlora_eval.judge.parse import parse_verdict
from qlora_eval.types import Verdict

GOLDEN = [
    ("Answer 1 is more complete.\n1", Verdict.A),
    ("Reasoning...\n\n2\n", Verdict.B),
    ("Both fine.\n3", Verdict.TIE),
    ("**1**", Verdict.A),
    ("blah\n**2.**", Verdict.B),
    ("blah\n3.", Verdict.TIE),
    ("blah\n`1`", Verdict.A),
    ("blah\n[[2]]", Verdict.B),
    ("blah\nVerdict: 3", Verdict.TIE),
    ("blah\nFinal decision: **1**", Verdict.A),
    ("  2  \n\n   \n", Verdict.B),
    ("blah\n(1)", Verdict.A),
    # strict: anything but a lone verdict on the last line is INVALID, never guessed
    ("", Verdict.INVALID),
    ("\n \n", Verdict.INVALID),
    ("1\nI think both are good", Verdict.INVALID),
    ("The answer is 1", Verdict.INVALID),
    ("1 or 2", Verdict.INVALID),
    ("12", Verdict.INVALID),
    ("4", Verdict.INVALID),
    ("0", Verdict.INVALID),
    ("1.5", Verdict.INVALID),
    ("Answer 1 is better", Verdict.INVALID),
    ("tie", Verdict.INVALID),
]


@pytest.mark.parametrize(("text", "expected"), GOLDEN)
def test_golden(text: str, expected: Verdict) -> None:
    assert parse_verdict(text) is expected

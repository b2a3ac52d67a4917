"""verdicts_sha256's fast path gives the value of its plain definition (documents stay comparable)."""

from __future__ import annotations

import random

import pytest

from qlora_eval.types import Judgment, Order, Verdict, content_key
from qlora_eval.workflows.rank import _sorted_rows_json, verdicts_sha256

PLAIN = ["a", "b", "ab", "", "é", "\u2028", "z", "\x7f", "A", "-", "/", " "]
ESCAPED = [*PLAIN, "\x00", "\x01", '"', "\\", "\n", "\x1f"]


def _rows(judgments: list[Judgment]) -> list[tuple[str, ...]]:
    return [
        (j.judge, j.model_a, j.model_b, j.prompt_set, j.prompt_id, j.order.value, j.verdict.value) for j in judgments
    ]


def _plain_hash(judgments: list[Judgment]) -> str:
    """The definition: content_key of the sorted 7-field rows."""
    return content_key(sorted(_rows(judgments)))


def _random_judgments(rng: random.Random, alphabet: list[str], n: int) -> list[Judgment]:
    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 3)))

    def judgment() -> Judgment:
        model_a = text()
        model_b = model_a + rng.choice(alphabet) + "b"  # a judgment needs two different models
        if rng.random() < 0.5:
            model_a, model_b = model_b, model_a
        return Judgment(text(), model_a, model_b, text(), text(), rng.choice(list(Verdict)), rng.choice(list(Order)))

    return [judgment() for _ in range(n)]


@pytest.mark.parametrize("alphabet", [PLAIN, ESCAPED], ids=["plain", "escaped"])
def test_fast_hash_equals_the_definition(alphabet: list[str]) -> None:
    rng = random.Random(7)
    fast = 0
    for _ in range(600):
        judgments = _random_judgments(rng, alphabet, rng.randrange(0, 8))
        fast += _sorted_rows_json(_rows(judgments)) is not None
        assert verdicts_sha256(judgments) == _plain_hash(judgments)
        assert verdicts_sha256(judgments[::-1]) == verdicts_sha256(judgments)  # order-independent
    assert fast > (400 if alphabet is PLAIN else 0)  # the plain alphabet mostly takes the fast path


def test_known_value_is_kept() -> None:
    """Pinned: the value that documents written before the fast path hold for these verdicts."""
    judgments = [
        Judgment("gpt-4", "m1", "m2", "vicuna", "1", Verdict.A, Order.FORWARD),
        Judgment("gpt-4", "m2", "m1", "vicuna", "1", Verdict.TIE, Order.SWAPPED),
    ]
    assert verdicts_sha256(judgments) == "9d5b9a0883031634554a8890c895313338fd2e311e3bb355a48af257fd415c10"

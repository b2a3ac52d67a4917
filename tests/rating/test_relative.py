"""Relative scoring: percentages against a reference, both shown orders, INVALID counted, the bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest

from qlora_eval.errors import InputError
from qlora_eval.rating.relative import percent_of_reference, relative_table
from qlora_eval.types import Order, RelativeJudgment


def call(first: str, second: str, prompt: str, scores: tuple[float, float] | None) -> RelativeJudgment:
    return RelativeJudgment("gpt-4", first, second, "vicuna", prompt, scores, Order.of(first, second))


def test_percent_is_total_over_total_whatever_the_shown_order() -> None:
    calls = [
        call("ref", "m", "1", (10, 8)),  # reference shown first: m scored 8
        call("m", "ref", "1", (9, 10)),  # m shown first: m scored 9
        call("ref", "m", "2", (5, 5)),
        call("m", "ref", "2", (6, 4)),
    ]
    table = relative_table(calls, "ref", 200, np.random.default_rng(0))
    (row,) = table.models
    # m: 8 + 9 + 5 + 6 = 28; ref: 10 + 10 + 5 + 4 = 29.
    assert row.percent == pytest.approx(100 * 28 / 29)
    assert (row.model, row.prompts, row.calls, row.invalid) == ("m", 2, 4, 0)


def test_invalid_calls_are_counted_and_add_to_neither_total() -> None:
    calls = [call("ref", "m", "1", (10, 5)), call("m", "ref", "1", None), call("ref", "m", "2", (8, 8))]
    (row,) = relative_table(calls, "ref", 50, np.random.default_rng(0)).models
    assert row.percent == pytest.approx(100 * 13 / 18)
    assert (row.calls, row.invalid) == (2, 1)


def test_calls_without_the_reference_are_not_used_and_models_are_sorted_best_first() -> None:
    calls = [
        call("ref", "weak", "1", (10, 4)),
        call("strong", "ref", "1", (10, 8)),
        call("strong", "weak", "1", (10, 1)),  # no reference: ignored
    ]
    table = relative_table(calls, "ref", 50, np.random.default_rng(0))
    assert [(m.model, m.percent) for m in table.models] == [("strong", 125.0), ("weak", 40.0)]
    document = table.to_json_dict()
    assert document["method"] == "relative" and document["reference"] == "ref"
    assert set(document["models"][0]) >= {"model", "percent", "ci_low", "ci_high", "prompts"}


def test_unknown_reference_names_the_models() -> None:
    with pytest.raises(InputError, match=r"no relative judgment involves the reference 'chatgpt'.*m, ref"):
        relative_table([call("ref", "m", "1", (1, 2))], "chatgpt", 50, np.random.default_rng(0))


def test_bootstrap_resamples_prompts_deterministically_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(5)
    n = 60
    own = rng.integers(5, 10, size=2 * n).astype(float)
    ref = rng.integers(6, 11, size=2 * n).astype(float)
    prompt = np.repeat(np.arange(n), 2)  # two calls (both orders) per prompt
    first = percent_of_reference(own, ref, prompt, 2000, np.random.default_rng(1))
    again = percent_of_reference(own, ref, prompt, 2000, np.random.default_rng(1))
    assert first == again
    percent, low, high = first
    assert percent == pytest.approx(100 * own.sum() / ref.sum())
    assert low < percent < high
    # A prompt-level bootstrap: the interval from resampling prompts is close to the normal-theory width of
    # the ratio estimator over prompts (delta method), within 25%.
    own_p, ref_p = own.reshape(n, 2).sum(1), ref.reshape(n, 2).sum(1)
    r = own_p.sum() / ref_p.sum()
    se = np.sqrt(np.var(own_p - r * ref_p, ddof=1) * n) / ref_p.sum() * 100
    assert (high - low) == pytest.approx(2 * 1.96 * se, rel=0.25)


def test_identical_scores_give_100_percent_with_a_zero_width_interval() -> None:
    scores = np.full(10, 7.0)
    assert percent_of_reference(scores, scores, np.arange(10), 100, np.random.default_rng(0)) == (100.0, 100.0, 100.0)


@pytest.mark.parametrize(
    ("own", "ref", "prompt", "rounds", "match"),
    [
        (np.ones(3), np.ones(2), np.arange(3), 10, "equal-length"),
        (np.ones(0), np.ones(0), np.arange(0), 10, "no calls"),
        (np.ones(3), np.ones(3), np.arange(3), 1, "at least 2"),
        (np.ones(3), np.zeros(3), np.arange(3), 10, "total score is 0"),
    ],
)
def test_bad_arrays_are_refused(own: np.ndarray, ref: np.ndarray, prompt: np.ndarray, rounds: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        percent_of_reference(own, ref, prompt, rounds, np.random.default_rng(0))

from __future__ import annotations

import math

import numpy as np
import pytest

from qlora_eval.rating import (
    battle_arrays,
    length_preference,
    observed_win_rates,
    position_bias,
    position_bias_by_judge,
    predicted_win_rates,
)
from qlora_eval.types import Battle, Verdict


def test_observed_win_rates_count_ties_half_and_both_positions() -> None:
    arrays = battle_arrays(
        [
            Battle("a", "b", Verdict.A, "q1"),
            Battle("b", "a", Verdict.A, "q1"),
            Battle("a", "b", Verdict.TIE, "q2"),
            Battle("b", "a", Verdict.B, "q2"),
            Battle("a", "c", Verdict.BOTH_BAD, "q1"),
            Battle("a", "c", Verdict.INVALID, "q2"),
        ]
    )
    rates = observed_win_rates(arrays)
    # a vs b: win, loss, tie, win -> 2.5 / 4.
    assert rates[0, 1] == pytest.approx(0.625)
    assert rates[1, 0] == pytest.approx(0.375)
    assert rates[0, 2] == pytest.approx(0.5)
    assert math.isnan(rates[1, 2]) and math.isnan(rates[2, 1])
    assert np.isnan(np.diag(rates)).all()


def test_predicted_win_rates() -> None:
    pred = predicted_win_rates(np.array([1400.0, 1000.0, 1000.0]))
    assert pred[0, 1] == pytest.approx(10 / 11)
    assert pred[1, 2] == pytest.approx(0.5)
    np.testing.assert_allclose(pred + pred.T, np.where(np.eye(3) > 0, np.nan, 1.0))
    # Davidson between equals: expected score stays 1/2 whatever nu is; with nu the win share drops.
    dav = predicted_win_rates(np.array([1400.0, 1000.0]), tie_nu=1.0)
    assert dav[0, 1] + dav[1, 0] == pytest.approx(1.0)
    assert 0.5 < dav[0, 1] < 10 / 11


def test_position_bias_and_swap_consistency() -> None:
    battles = [
        # q1, judge j: both orders, the same winner (a): consistent.
        Battle("a", "b", Verdict.A, "q1", "j"),
        Battle("b", "a", Verdict.B, "q1", "j"),
        # q2, judge j: the first-shown answer wins both times: inconsistent.
        Battle("a", "b", Verdict.A, "q2", "j"),
        Battle("b", "a", Verdict.A, "q2", "j"),
        # q3, judge k: tie both ways: consistent; ties are not decisive.
        Battle("a", "b", Verdict.TIE, "q3", "k"),
        Battle("b", "a", Verdict.TIE, "q3", "k"),
        # q4, judge k: one order only (no swap check); an INVALID verdict is ignored.
        Battle("a", "b", Verdict.B, "q4", "k"),
        Battle("b", "a", Verdict.INVALID, "q4", "k"),
    ]
    arrays = battle_arrays(battles)
    bias = position_bias(arrays)
    assert bias.decisive == 5
    assert bias.first_wins == 3
    assert bias.first_win_rate == pytest.approx(0.6)
    assert bias.first_win_ci is not None and bias.first_win_ci[0] < 0.6 < bias.first_win_ci[1]
    assert bias.swap_pairs == 3
    assert bias.swap_consistent == 2
    assert bias.consistency == pytest.approx(2 / 3)
    per_judge = position_bias_by_judge(arrays)
    assert set(per_judge) == {"j", "k"}
    assert per_judge["j"].consistency == pytest.approx(0.5)
    assert per_judge["k"].consistency == pytest.approx(1.0)
    assert per_judge["k"].first_win_rate == pytest.approx(0.0)


def test_tie_and_both_bad_are_different_verdicts_under_swap() -> None:
    arrays = battle_arrays([Battle("a", "b", Verdict.TIE, "q"), Battle("b", "a", Verdict.BOTH_BAD, "q")])
    bias = position_bias(arrays)
    assert bias.decisive == 0 and bias.first_win_rate is None and bias.first_win_ci is None
    assert (bias.swap_pairs, bias.swap_consistent) == (1, 0)


def test_length_preference() -> None:
    codes = np.array([0, 1, 0, 2, 1])  # A, B, A, TIE, B
    pref = length_preference(np.array([10, 5, 3, 9, 4]), np.array([5, 20, 3, 1, 2]), codes)
    # battle 0: longer (a) wins; battle 1: longer (b) wins; battle 2: equal lengths; 3: tie; 4: shorter wins.
    assert (pref.decisive, pref.longer_wins) == (3, 2)
    assert pref.longer_win_rate == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="share shape"):
        length_preference(np.array([1]), np.array([1, 2]), np.array([0]))

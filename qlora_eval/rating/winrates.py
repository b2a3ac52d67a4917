"""Observed and predicted win-rate matrices and battle counts.

"Win rate" of ``i`` over ``j`` is the mean score of ``i`` in their battles: wins count 1, ties
(TIE and BOTH_BAD) 0.5, losses 0, whichever model was shown first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qlora_eval.rating.battles import BattleArrays, battle_counts


@dataclass(frozen=True, eq=False)
class WinRates:
    """Pairwise matrices over ``m`` models; row ``i``, column ``j`` is ``i`` against ``j``.

    Attributes:
        models: the row/column order.
        counts: shape ``(m, m)`` int64, valid battles between ``i`` and ``j`` (symmetric).
        observed: shape ``(m, m)`` float64, observed mean score of ``i`` against ``j``; NaN where they never
            met and on the diagonal.
        predicted: shape ``(m, m)`` float64, the expected score of ``i`` against ``j`` under the ratings;
            NaN on the diagonal.
    """

    models: tuple[str, ...]
    counts: np.ndarray
    observed: np.ndarray
    predicted: np.ndarray


def observed_win_rates(arrays: BattleArrays) -> np.ndarray:
    """Observed mean score of each model against each other.

    Returns:
        Shape ``(m, m)``; ``NaN`` where two models never met and on the diagonal.
    """
    m = arrays.n_models
    score = np.zeros((m, m))
    np.add.at(score, (arrays.a_idx, arrays.b_idx), arrays.score_a)
    np.add.at(score, (arrays.b_idx, arrays.a_idx), 1.0 - arrays.score_a)
    counts = battle_counts(arrays)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates: np.ndarray = np.where(counts > 0, score / np.maximum(counts, 1), np.nan)
    return rates


def predicted_win_rates(ratings: np.ndarray, *, scale: float = 400.0, tie_nu: float | None = None) -> np.ndarray:
    """Expected score of ``i`` against ``j`` under Elo-scale ratings.

    Args:
        ratings: shape ``(m,)``.
        scale: the Elo scale (400).
        tie_nu: Davidson's tie parameter when the ratings come from a Davidson fit; the expected score is
            then ``P(win) + P(tie) / 2``. None for the plain logistic model (Elo, BT with half-win ties).

    Returns:
        Shape ``(m, m)``, NaN on the diagonal.
    """
    r = np.asarray(ratings, dtype=np.float64)
    x = (r[:, None] - r[None, :]) * (math.log(10.0) / scale)
    if tie_nu is None:
        expected = 0.5 * (1.0 + np.tanh(0.5 * x))
    else:
        half = 0.5 * x
        log_d = np.logaddexp(np.logaddexp(half, -half), math.log(tie_nu))
        expected = np.exp(half - log_d) + 0.5 * tie_nu * np.exp(-log_d)
    np.fill_diagonal(expected, np.nan)
    return expected


def win_rates(
    arrays: BattleArrays, ratings: np.ndarray, *, scale: float = 400.0, tie_nu: float | None = None
) -> WinRates:
    """Counts, observed and predicted win rates together.

    Args:
        arrays: the battles.
        ratings: shape ``(m,)`` in ``arrays.models`` order.
        scale, tie_nu: as in :func:`predicted_win_rates`.
    """
    return WinRates(
        models=arrays.models,
        counts=battle_counts(arrays),
        observed=observed_win_rates(arrays),
        predicted=predicted_win_rates(ratings, scale=scale, tie_nu=tie_nu),
    )

"""Property tests of the rating math (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qlora_eval.rating import elo_ratings, elo_reference_loop, fit_bradley_terry, random_orderings

# Win tables with every entry >= 1 off the diagonal: the estimate always exists.
tables = st.integers(min_value=2, max_value=5).flatmap(
    lambda m: arrays(np.float64, (m, m), elements=st.integers(min_value=1, max_value=30).map(float))
)


def _clean(wins: np.ndarray) -> np.ndarray:
    out = wins.copy()
    np.fill_diagonal(out, 0.0)
    return out


@settings(max_examples=20, deadline=None)
@given(tables)
def test_bt_mean_is_anchored_at_1000(wins: np.ndarray) -> None:
    fit = fit_bradley_terry(_clean(wins), np.zeros_like(wins))
    assert abs(fit.ratings.mean() - 1000.0) < 1e-6


@settings(max_examples=20, deadline=None)
@given(tables, st.data())
def test_bt_adding_a_win_never_lowers_the_winner(wins: np.ndarray, data: st.DataObject) -> None:
    wins = _clean(wins)
    m = wins.shape[0]
    i = data.draw(st.integers(0, m - 1))
    j = data.draw(st.integers(0, m - 1).filter(lambda v: v != i))
    before = fit_bradley_terry(wins, np.zeros_like(wins)).ratings
    more = wins.copy()
    more[i, j] += 1.0
    after = fit_bradley_terry(more, np.zeros_like(wins)).ratings
    assert after[i] - after[j] >= before[i] - before[j] - 1e-6
    # Relative to every other model, too (anchoring moves all ratings together).
    assert (after[i] - np.delete(after, i) >= before[i] - np.delete(before, i) - 1e-6).all()


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=2, max_value=5),
    st.integers(min_value=1, max_value=30),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_elo_vectorised_matches_loop_and_is_zero_sum(m: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    s = rng.choice([0.0, 0.5, 1.0], n)
    orderings = random_orderings(n, 5, rng)
    fast = elo_ratings(a, b, s, m, orderings)
    np.testing.assert_allclose(fast, elo_reference_loop(a, b, s, m, orderings), atol=1e-8)
    np.testing.assert_allclose(fast.sum(axis=1), 1000.0 * m, atol=1e-8)

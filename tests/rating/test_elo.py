from __future__ import annotations

import math

import numpy as np
import pytest

from qlora_eval.rating import elo_ratings, elo_reference_loop, fit_elo, random_orderings, summarize_elo


def _expected(ra: float, rb: float) -> float:
    return 1.0 / (1.0 + 10.0 ** ((rb - ra) / 400.0))


def test_one_win_from_equal_ratings_moves_16_points() -> None:
    out = elo_ratings(np.array([0]), np.array([1]), np.array([1.0]), 2, np.array([[0]]))
    np.testing.assert_allclose(out, [[1016.0, 984.0]], atol=1e-9)


def test_tie_between_equals_changes_nothing_and_loss_mirrors_win() -> None:
    tie = elo_ratings(np.array([0]), np.array([1]), np.array([0.5]), 2, np.array([[0]]))
    np.testing.assert_allclose(tie, [[1000.0, 1000.0]], atol=1e-9)
    loss = elo_ratings(np.array([0]), np.array([1]), np.array([0.0]), 2, np.array([[0]]))
    np.testing.assert_allclose(loss, [[984.0, 1016.0]], atol=1e-9)


def test_two_battles_in_both_orderings_by_hand() -> None:
    # Battle 0: A beats B. Battle 1: B (shown first) beats A.
    a_idx, b_idx, score = np.array([0, 1]), np.array([1, 0]), np.array([1.0, 1.0])
    out = elo_ratings(a_idx, b_idx, score, 2, np.array([[0, 1], [1, 0]]))
    # Ordering [0, 1]: A -> 1016, B -> 984; then B beats A from 984 vs 1016.
    delta = 32 * (1 - _expected(984.0, 1016.0))
    first = [1016.0 - delta, 984.0 + delta]
    assert delta == pytest.approx(17.4695, abs=1e-4)
    assert out[0].tolist() == pytest.approx(first, abs=1e-9)
    # Ordering [1, 0] is the mirror image; the average over both orderings is exactly 1000 each.
    assert out[1].tolist() == pytest.approx(first[::-1], abs=1e-9)
    assert out.mean(axis=0).tolist() == pytest.approx([1000.0, 1000.0], abs=1e-9)


def test_custom_constants() -> None:
    out = elo_ratings(np.array([0]), np.array([1]), np.array([1.0]), 2, np.array([[0]]), k=10, initial=1500)
    np.testing.assert_allclose(out, [[1505.0, 1495.0]], atol=1e-9)


def test_vectorised_equals_reference_loop_on_random_data() -> None:
    rng = np.random.default_rng(7)
    m, n, rounds = 6, 300, 40
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    s = rng.choice([0.0, 0.5, 1.0], n)
    orderings = random_orderings(n, rounds, rng)
    fast = elo_ratings(a, b, s, m, orderings)
    slow = elo_reference_loop(a, b, s, m, orderings)
    assert fast.shape == (rounds, m)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-8)
    # Elo is zero-sum: every ordering keeps the mean at the starting rating.
    np.testing.assert_allclose(fast.mean(axis=1), 1000.0, atol=1e-8)


def test_random_orderings_are_permutations() -> None:
    perms = random_orderings(50, 200, np.random.default_rng(1))
    assert perms.shape == (200, 50)
    assert (np.sort(perms, axis=1) == np.arange(50)).all()
    # Each battle lands in the first position about equally often (uniform permutations).
    assert np.bincount(perms[:, 0], minlength=50).max() < 20
    assert len({tuple(row) for row in perms.tolist()}) == 200


def test_fit_elo_summary_statistics() -> None:
    a, b, s = np.array([0, 1, 0, 2]), np.array([1, 2, 2, 0]), np.array([1.0, 1.0, 0.5, 0.0])
    result = fit_elo(a, b, s, 3, 500, np.random.default_rng(3))
    assert result.samples.shape == (500, 3)
    np.testing.assert_allclose(result.mean, result.samples.mean(axis=0))
    np.testing.assert_allclose(result.se, result.samples.std(axis=0, ddof=1) / math.sqrt(500))
    assert (result.ci_low <= result.mean).all() and (result.mean <= result.ci_high).all()
    # Model 0 won twice and tied once, model 1 won once and lost once, model 2 lost twice and tied once.
    assert result.mean[0] > result.mean[1] > result.mean[2]


def test_same_seed_same_result_and_rounds_checked() -> None:
    a, b, s = np.array([0, 1]), np.array([1, 0]), np.array([1.0, 0.5])
    first = fit_elo(a, b, s, 2, 20, np.random.default_rng(5)).samples
    second = fit_elo(a, b, s, 2, 20, np.random.default_rng(5)).samples
    assert np.array_equal(first, second)
    with pytest.raises(ValueError, match="at least 2"):
        fit_elo(a, b, s, 2, 1, np.random.default_rng(5))
    with pytest.raises(ValueError, match="shape"):
        summarize_elo(np.zeros((1, 2)))

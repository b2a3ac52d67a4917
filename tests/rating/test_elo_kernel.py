"""The compiled Elo replay against the numpy reference path."""

from __future__ import annotations

import numpy as np
import pytest

from qlora_eval.rating import elo_ratings, fit_elo, fit_elo_reference
from qlora_eval.rating.elo_kernel import compiled_elo_ratings, kernel_orderings, pack_battles
from qlora_eval.rating.rng_kernel import round_keys


def _battles(seed: int, m: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    strength = np.linspace(-1.0, 1.0, m)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    p_a = 1.0 / (1.0 + np.exp(strength[b] - strength[a]))
    u = rng.random(n)
    s = np.where(u < 0.15, 0.5, np.where(rng.random(n) < p_a, 1.0, 0.0))
    return a, b, s


@pytest.mark.parametrize("rounds", [40, 7, 1])  # the kernel replays rounds four at a time: remainders too
def test_compiled_replay_equals_numpy_replay_of_the_same_orderings(rounds: int) -> None:
    a, b, s = _battles(1, 6, 500)
    keys = round_keys(rounds, np.random.default_rng(2))
    orderings = kernel_orderings(500, keys)
    assert (np.sort(orderings, axis=1) == np.arange(500)).all()
    compiled = compiled_elo_ratings(a, b, s, 6, keys, k=32.0, scale=400.0, initial=1000.0, threads=1)
    reference = elo_ratings(a, b, s, 6, orderings)
    np.testing.assert_allclose(compiled, reference, rtol=0, atol=1e-9)


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_same_seed_same_result_on_any_thread_count(threads: int) -> None:
    a, b, s = _battles(3, 5, 300)
    one = fit_elo(a, b, s, 5, 1000, np.random.default_rng(9), threads=1)
    many = fit_elo(a, b, s, 5, 1000, np.random.default_rng(9), threads=threads)
    assert np.array_equal(one.samples, many.samples)
    other_seed = fit_elo(a, b, s, 5, 1000, np.random.default_rng(10), threads=threads)
    assert not np.array_equal(one.samples, other_seed.samples)


def test_kernel_orderings_are_uniform() -> None:
    # Every battle lands in every position about equally often: 4,000 orderings of 8 battles, so each
    # (battle, position) cell expects 500; a biased shuffle (e.g. the naive swap-with-any) fails this.
    orderings = kernel_orderings(8, round_keys(4000, np.random.default_rng(4)))
    cells = np.zeros((8, 8))
    for position in range(8):
        cells[:, position] = np.bincount(orderings[:, position], minlength=8)
    chi2 = float(((cells - 500.0) ** 2 / 500.0).sum())
    assert chi2 < 90.0  # 49 degrees of freedom: P(chi2 > 90) < 1e-3
    # 8! = 40,320 orderings: 4,000 uniform draws give 40,320 (1 - exp(-4000 / 40320)) = 3,808 distinct on average.
    assert 3750 < len({tuple(row) for row in orderings.tolist()}) <= 3870


def test_compiled_and_numpy_paths_agree_in_distribution() -> None:
    # Different draws by construction, so compare the summaries: means within a few standard errors,
    # spreads within 10% (2,000 orderings each).
    a, b, s = _battles(5, 6, 400)
    compiled = fit_elo(a, b, s, 6, 2000, np.random.default_rng(11), threads=2)
    numpy_path = fit_elo_reference(a, b, s, 6, 2000, np.random.default_rng(12))
    tolerance = 5.0 * np.hypot(compiled.se, numpy_path.se)
    assert (np.abs(compiled.mean - numpy_path.mean) < tolerance).all()
    np.testing.assert_allclose(compiled.std, numpy_path.std, rtol=0.1)
    np.testing.assert_allclose(compiled.ci_low, numpy_path.ci_low, atol=3.0 * float(numpy_path.std.max()) / 10)
    assert np.argsort(compiled.mean).tolist() == np.argsort(numpy_path.mean).tolist()


def test_pack_battles_rejects_scores_other_than_win_tie_loss() -> None:
    with pytest.raises(ValueError, match=r"scores 0, 0\.5 or 1"):
        pack_battles(np.array([0]), np.array([1]), np.array([0.3]))
    with pytest.raises(ValueError, match="threads"):
        compiled_elo_ratings(
            np.array([0]),
            np.array([1]),
            np.array([1.0]),
            2,
            round_keys(2, np.random.default_rng(0)),
            k=32.0,
            scale=400.0,
            initial=1000.0,
            threads=0,
        )

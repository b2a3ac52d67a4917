"""Sparse prompt tables and the sparse BT bootstrap against the dense reference."""

from __future__ import annotations

import numpy as np
import pytest

from qlora_eval.rating import (
    TieModel,
    battle_arrays,
    bootstrap_bradley_terry,
    bootstrap_bradley_terry_dense,
    bootstrap_prompt_counts,
    prompt_count_tables,
)
from qlora_eval.rating.bt_bootstrap import strongly_connected_rounds
from qlora_eval.rating.bt_tables import draw_type_counts, prompt_types
from tests.rating.helpers import synthetic_battles

STRENGTHS = {"a": 1150.0, "b": 1050.0, "c": 1000.0, "d": 900.0, "e": 980.0}


def _random_battles(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    m = int(rng.integers(2, 7))
    n_prompts = int(rng.integers(2, 12))
    n = int(rng.integers(n_prompts, 60))
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    s = rng.choice([0.0, 0.5, 1.0], n)
    g = np.r_[np.arange(n_prompts), rng.integers(0, n_prompts, n - n_prompts)]
    rng.shuffle(g)
    return a, b, s, g, n_prompts, m


def _table_key(w: np.ndarray, t: np.ndarray) -> bytes:
    return w.tobytes() + t.tobytes()


@pytest.mark.parametrize("seed", range(30))
def test_types_reproduce_every_prompt_table_and_round_tables_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b, s, g, n_prompts, m = _random_battles(rng)
    types = prompt_types(a, b, s, g, n_prompts, m)
    dense_w, dense_t = prompt_count_tables(a, b, s, g, n_prompts, m)
    type_w, type_t = types.dense(*types.round_tables(np.eye(types.n_types)))
    key_of_type = {_table_key(type_w[k], type_t[k]): k for k in range(types.n_types)}
    assert len(key_of_type) == types.n_types  # merged types are distinct
    type_of_prompt = np.array([key_of_type[_table_key(dense_w[p], dense_t[p])] for p in range(n_prompts)])
    np.testing.assert_array_equal(np.bincount(type_of_prompt, minlength=types.n_types), types.multiplicity)
    first_prompt = [int(np.flatnonzero(type_of_prompt == k)[0]) for k in range(types.n_types)]
    assert first_prompt == sorted(first_prompt)  # types keep the order of their first prompt
    # Any prompt draw, aggregated by type, gives exactly the dense weighted sum.
    prompt_counts = rng.multinomial(n_prompts, np.full(n_prompts, 1.0 / n_prompts), size=7)
    type_counts = np.zeros((7, types.n_types))
    np.add.at(type_counts.T, type_of_prompt, prompt_counts.T)
    w, t = types.dense(*types.round_tables(type_counts))
    np.testing.assert_array_equal(w, np.tensordot(prompt_counts, dense_w, axes=1))
    np.testing.assert_array_equal(t, np.tensordot(prompt_counts, dense_t, axes=1))


def test_identical_prompts_are_merged() -> None:
    # Prompts 0 and 2 hold the same single battle; prompt 1 another.
    a, b, s, g = np.array([0, 1, 0]), np.array([1, 2, 1]), np.array([1.0, 0.5, 1.0]), np.array([0, 1, 2])
    types = prompt_types(a, b, s, g, 3, 3)
    assert types.multiplicity.tolist() == [2, 1]
    counts = draw_type_counts(types, 2000, np.random.default_rng(0))
    assert (counts.sum(axis=1) == 3).all()
    # Drawing 3 prompts with replacement: the type of prompts {0, 2} comes up 3 * 2/3 = 2 times on average.
    assert counts[:, 0].mean() == pytest.approx(2.0, abs=0.08)


def test_type_draws_equal_prompt_draws_when_prompts_are_distinct() -> None:
    arrays = battle_arrays(synthetic_battles(np.random.default_rng(3), STRENGTHS, 9))
    types = prompt_types(arrays.a_idx, arrays.b_idx, arrays.score_a, arrays.prompt_idx, 9, 5)
    assert types.n_types == 9
    np.testing.assert_array_equal(
        draw_type_counts(types, 50, np.random.default_rng(4)), bootstrap_prompt_counts(9, 50, np.random.default_rng(4))
    )


@pytest.mark.parametrize("tie_model", list(TieModel))
@pytest.mark.parametrize("prior", [0.0, 1.0])
def test_sparse_bootstrap_equals_dense_reference(tie_model: TieModel, prior: float) -> None:
    arrays = battle_arrays(synthetic_battles(np.random.default_rng(6), STRENGTHS, 12))
    args = (arrays.a_idx, arrays.b_idx, arrays.score_a, arrays.prompt_idx, 5, 200)
    sparse = bootstrap_bradley_terry(*args, np.random.default_rng(9), tie_model=tie_model, prior=prior, anchor=2)
    dense = bootstrap_bradley_terry_dense(*args, np.random.default_rng(9), tie_model=tie_model, prior=prior, anchor=2)
    np.testing.assert_allclose(sparse.point.ratings, dense.point.ratings, rtol=0, atol=1e-9)
    # Both solvers stop at steps below 1e-10 (natural-log units): ratings agree far below a rating point.
    np.testing.assert_allclose(sparse.samples, dense.samples, rtol=0, atol=1e-6)
    np.testing.assert_allclose(sparse.ci_low, dense.ci_low, rtol=0, atol=1e-6)
    if tie_model is TieModel.DAVIDSON:
        assert sparse.tie_nu_samples is not None and dense.tie_nu_samples is not None
        np.testing.assert_allclose(sparse.tie_nu_samples, dense.tie_nu_samples, rtol=1e-7)


def test_strongly_connected_rounds_matches_definition() -> None:
    rng = np.random.default_rng(1)
    edges = rng.random((300, 6, 6)) < 0.3
    fast = strongly_connected_rounds(edges)
    closure = edges.astype(float) + np.eye(6)
    for _ in range(4):
        closure = np.minimum(closure @ closure, 1.0)
    assert fast.tolist() == (closure > 0).all(axis=(1, 2)).tolist()
    assert 0 < fast.sum() < 300  # both outcomes occur


def test_compiled_type_draws_are_multinomial_and_thread_independent() -> None:
    from qlora_eval.rating.bt_kernel import compiled_type_counts
    from qlora_eval.rating.rng_kernel import round_keys

    # Means below and above 10 exercise both Poisson samplers; P = 274.
    multiplicity = np.array([1, 2, 3, 5, 9, 10, 11, 30, 200, 3])
    p = multiplicity.sum()
    keys = round_keys(20_000, np.random.default_rng(0))
    counts = compiled_type_counts(multiplicity, keys, threads=2)
    assert (counts.sum(axis=1) == p).all() and (counts >= 0).all()
    expected_mean = multiplicity.astype(float)
    expected_var = p * (multiplicity / p) * (1 - multiplicity / p)
    # 20,000 rounds: means within 4 standard errors, variances within 6%.
    np.testing.assert_array_less(np.abs(counts.mean(axis=0) - expected_mean), 4 * np.sqrt(expected_var / 20_000))
    np.testing.assert_allclose(counts.var(axis=0), expected_var, rtol=0.06)
    # Covariances of a multinomial are negative: -P pi_i pi_j.
    cov = np.cov(counts[:, 7], counts[:, 8])[0, 1]
    assert cov == pytest.approx(-p * (30 / p) * (200 / p), rel=0.1)
    assert np.array_equal(compiled_type_counts(multiplicity, keys[:300], threads=1), counts[:300])
    assert np.array_equal(compiled_type_counts(multiplicity, keys[:300], threads=3), counts[:300])


def test_bootstrap_through_the_compiled_sampler_matches_the_dense_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    import qlora_eval.rating.bt_tables as bt_tables

    arrays = battle_arrays(synthetic_battles(np.random.default_rng(8), STRENGTHS, 40))
    args = (arrays.a_idx, arrays.b_idx, arrays.score_a, arrays.prompt_idx, 5, 1500)
    dense = bootstrap_bradley_terry_dense(*args, np.random.default_rng(1))
    monkeypatch.setattr(bt_tables, "NUMPY_DRAW_MAX_TYPES", 0)
    compiled = bootstrap_bradley_terry(*args, np.random.default_rng(2))
    again = bootstrap_bradley_terry(*args, np.random.default_rng(2))
    assert np.array_equal(compiled.samples, again.samples)
    np.testing.assert_allclose(compiled.point.ratings, dense.point.ratings, atol=1e-9)
    # Same distribution, different draws: standard errors within 10%, interval ends within a third of an se.
    np.testing.assert_allclose(compiled.se, dense.se, rtol=0.1)
    np.testing.assert_array_less(np.abs(compiled.ci_low - dense.ci_low), dense.se / 3)
    np.testing.assert_array_less(np.abs(compiled.ci_high - dense.ci_high), dense.se / 3)


def test_compiled_chord_fits_equal_the_numpy_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    import qlora_eval.rating.bt_bootstrap as bt_bootstrap

    arrays = battle_arrays(synthetic_battles(np.random.default_rng(12), STRENGTHS, 15))
    args = (arrays.a_idx, arrays.b_idx, arrays.score_a, arrays.prompt_idx, 5, 300)
    numpy_fits = bootstrap_bradley_terry(*args, np.random.default_rng(3))
    monkeypatch.setattr(bt_bootstrap, "_COMPILED_CHORD_MIN_CELLS", 0)
    compiled = bootstrap_bradley_terry(*args, np.random.default_rng(3))
    dense = bootstrap_bradley_terry_dense(*args, np.random.default_rng(3))
    np.testing.assert_allclose(compiled.samples, numpy_fits.samples, rtol=0, atol=1e-6)
    np.testing.assert_allclose(compiled.samples, dense.samples, rtol=0, atol=1e-6)

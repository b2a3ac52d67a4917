from __future__ import annotations

import math

import numpy as np
import pytest

from qlora_eval.errors import ConvergenceError, InputError
from qlora_eval.rating import (
    TieModel,
    battle_arrays,
    bootstrap_bradley_terry,
    bootstrap_prompt_counts,
    bootstrap_reference_loop,
    count_tables,
    fit_bradley_terry,
    newton_fit_batch,
    prompt_count_tables,
)
from qlora_eval.rating.bradley_terry import scipy_reference_fit
from qlora_eval.types import Battle, Verdict
from tests.rating.helpers import synthetic_battles

STRENGTHS = {"a": 1150.0, "b": 1050.0, "c": 1000.0, "d": 900.0}


def _fit_battles(battles: list[Battle], **kwargs: object) -> np.ndarray:
    arrays = battle_arrays(battles)
    wins, ties = count_tables(arrays.a_idx, arrays.b_idx, arrays.score_a, arrays.n_models)
    return fit_bradley_terry(wins, ties, **kwargs).ratings  # type: ignore[arg-type]


def test_two_models_closed_form() -> None:
    wins = np.array([[0.0, 30.0], [10.0, 0.0]])
    fit = fit_bradley_terry(wins, np.zeros((2, 2)))
    assert fit.ratings[0] - fit.ratings[1] == pytest.approx(400 * math.log10(3), abs=1e-4)
    assert fit.ratings.mean() == pytest.approx(1000.0, abs=1e-9)
    assert fit.tie_nu is None


def test_ties_count_as_half_a_win_each_way() -> None:
    # 10 wins, 4 losses, 6 ties -> 13 : 7 in half-win terms.
    fit = fit_bradley_terry(np.array([[0.0, 10.0], [4.0, 0.0]]), np.array([[0.0, 6.0], [6.0, 0.0]]))
    assert fit.ratings[0] - fit.ratings[1] == pytest.approx(400 * math.log10(13 / 7), abs=1e-4)


def test_three_models_consistent_case_recovers_true_ratings() -> None:
    true = np.array([1200.0, 1000.0, 800.0])
    x = (true[:, None] - true[None, :]) * math.log(10) / 400
    wins = 100.0 * (1 / (1 + np.exp(-x)))  # expected counts: the score equations hold at the truth
    np.fill_diagonal(wins, 0.0)
    fit = fit_bradley_terry(wins, np.zeros((3, 3)))
    np.testing.assert_allclose(fit.ratings, true, atol=1e-3)


def test_davidson_two_model_closed_form() -> None:
    won, lost, tied = 12.0, 3.0, 9.0
    fit = fit_bradley_terry(
        np.array([[0.0, won], [lost, 0.0]]), np.array([[0.0, tied], [tied, 0.0]]), tie_model=TieModel.DAVIDSON
    )
    assert fit.ratings[0] - fit.ratings[1] == pytest.approx(400 * math.log10(won / lost), abs=1e-3)
    assert fit.tie_nu == pytest.approx(tied / math.sqrt(won * lost), rel=1e-5)


def test_davidson_without_ties_is_refused() -> None:
    with pytest.raises(ConvergenceError, match="at least one tie"):
        fit_bradley_terry(np.array([[0.0, 3.0], [1.0, 0.0]]), np.zeros((2, 2)), tie_model=TieModel.DAVIDSON)


def test_swapping_positions_and_flipping_verdicts_gives_the_same_ratings() -> None:
    battles = synthetic_battles(np.random.default_rng(0), STRENGTHS, 5)
    swapped = [Battle(b.model_b, b.model_a, b.verdict.swapped(), b.prompt_id, b.judge) for b in battles]
    np.testing.assert_allclose(_fit_battles(battles), _fit_battles(swapped), atol=1e-6)


def test_battle_order_does_not_matter() -> None:
    battles = synthetic_battles(np.random.default_rng(1), STRENGTHS, 5)
    shuffled = [battles[i] for i in np.random.default_rng(2).permutation(len(battles))]
    np.testing.assert_allclose(_fit_battles(battles), _fit_battles(shuffled), atol=1e-6)
    first = battle_arrays(battles)
    second = battle_arrays(shuffled)
    boot_1 = bootstrap_bradley_terry(
        first.a_idx, first.b_idx, first.score_a, first.prompt_idx, 4, 50, np.random.default_rng(3)
    )
    boot_2 = bootstrap_bradley_terry(
        second.a_idx, second.b_idx, second.score_a, second.prompt_idx, 4, 50, np.random.default_rng(3)
    )
    np.testing.assert_allclose(boot_1.samples, boot_2.samples, atol=1e-6)


def test_anchor_translates_only() -> None:
    battles = synthetic_battles(np.random.default_rng(4), STRENGTHS, 4)
    by_mean = _fit_battles(battles)
    by_model = _fit_battles(battles, anchor=2)
    assert by_mean.mean() == pytest.approx(1000.0, abs=1e-9)
    assert by_model[2] == pytest.approx(1000.0, abs=1e-9)
    np.testing.assert_allclose(by_model - by_model[2], by_mean - by_mean[2], atol=1e-9)
    shifted = _fit_battles(battles, base=1500.0)
    np.testing.assert_allclose(shifted - 500.0, by_mean, atol=1e-9)


def test_undefeated_model_raises_and_prior_makes_it_finite() -> None:
    wins = np.array([[0.0, 5.0, 2.0], [0.0, 0.0, 3.0], [0.0, 1.0, 0.0]])  # model 0 never lost
    with pytest.raises(ConvergenceError, match=r"\{a\} never lost"):
        fit_bradley_terry(wins, np.zeros((3, 3)), models=["a", "b", "c"])
    fit = fit_bradley_terry(wins, np.zeros((3, 3)), prior=1.0)
    assert np.isfinite(fit.ratings).all()
    assert fit.ratings[0] > fit.ratings[1] > fit.ratings[2]
    # One tie against model 0 bounds its rating: ties count both ways.
    ties = np.zeros((3, 3))
    ties[0, 2] = ties[2, 0] = 1.0
    assert np.isfinite(fit_bradley_terry(wins, ties).ratings).all()


def test_point_fit_matches_scipy_lbfgs() -> None:
    battles = synthetic_battles(np.random.default_rng(11), STRENGTHS, 8)
    arrays = battle_arrays(battles)
    wins, ties = count_tables(arrays.a_idx, arrays.b_idx, arrays.score_a, 4)
    for tie_model in TieModel:
        fit = fit_bradley_terry(wins, ties, tie_model=tie_model)
        reference = scipy_reference_fit(wins, ties, tie_model=tie_model)
        np.testing.assert_allclose(fit.beta, reference[:4], atol=1e-5)
        if fit.tie_nu is not None:
            assert fit.tie_nu == pytest.approx(math.exp(reference[4]), rel=1e-4)


def test_newton_batch_matches_scipy_fits() -> None:
    battles = synthetic_battles(np.random.default_rng(5), STRENGTHS, 6)
    arrays = battle_arrays(battles)
    wins, ties = prompt_count_tables(
        arrays.a_idx, arrays.b_idx, arrays.score_a, arrays.prompt_idx, len(arrays.prompts), 4
    )
    # Each table is one prompt and several prompts pooled; start far from the optimum to exercise step halving.
    tables_w = np.stack([wins[:3].sum(0), wins[2:].sum(0), wins.sum(0)])
    tables_t = np.stack([ties[:3].sum(0), ties[2:].sum(0), ties.sum(0)])
    for tie_model in TieModel:
        d = 5 if tie_model is TieModel.DAVIDSON else 4
        start = np.tile(np.array([4.0, -3.0, 2.0, 0.5, 0.0][:d]), (3, 1))
        z = newton_fit_batch(tables_w, tables_t, start, tie_model=tie_model)
        for i in range(3):
            reference = scipy_reference_fit(tables_w[i], tables_t[i], tie_model=tie_model)
            np.testing.assert_allclose(z[i, :4], reference[:4], atol=1e-5)
            if tie_model is TieModel.DAVIDSON:
                assert math.exp(z[i, 4]) == pytest.approx(math.exp(reference[4]), rel=1e-4)


@pytest.mark.parametrize("tie_model", list(TieModel))
def test_vectorised_bootstrap_equals_per_round_loop(tie_model: TieModel) -> None:
    battles = synthetic_battles(np.random.default_rng(6), STRENGTHS, 8)
    arrays = battle_arrays(battles)
    boot = bootstrap_bradley_terry(
        arrays.a_idx,
        arrays.b_idx,
        arrays.score_a,
        arrays.prompt_idx,
        4,
        12,
        np.random.default_rng(9),
        tie_model=tie_model,
    )
    counts = bootstrap_prompt_counts(len(arrays.prompts), 12, np.random.default_rng(9))
    assert counts.sum(axis=1).tolist() == [8] * 12
    slow = bootstrap_reference_loop(
        arrays.a_idx, arrays.b_idx, arrays.score_a, arrays.prompt_idx, 4, counts, tie_model=tie_model
    )
    np.testing.assert_allclose(boot.samples, slow, atol=1e-3)


def test_bootstrap_interval_contains_point_and_shrinks_with_more_data() -> None:
    small = battle_arrays(synthetic_battles(np.random.default_rng(10), STRENGTHS, 10))
    big = battle_arrays(synthetic_battles(np.random.default_rng(10), STRENGTHS, 160))
    widths = []
    for arrays in (small, big):
        boot = bootstrap_bradley_terry(
            arrays.a_idx, arrays.b_idx, arrays.score_a, arrays.prompt_idx, 4, 300, np.random.default_rng(11)
        )
        assert (boot.ci_low <= boot.point.ratings).all() and (boot.point.ratings <= boot.ci_high).all()
        assert boot.samples.shape == (300, 4)
        np.testing.assert_allclose(boot.samples.mean(axis=1), 1000.0, atol=1e-6)
        np.testing.assert_allclose(boot.se, boot.samples.std(axis=0, ddof=1))
        widths.append(boot.ci_high - boot.ci_low)
    # 16 times the prompts: intervals about 4 times narrower (less with only 10 prompts to resample).
    assert widths[1].mean() < widths[0].mean() / 2.5
    assert (widths[1] < widths[0] / 1.8).all()


def test_bootstrap_keeps_a_prompts_battles_together() -> None:
    # On prompt "p0" model a wins everything, on "p1" model b does; rounds drawing p0 twice must have
    # a ahead by the full two-prompt margin, never a mixture of single battles.
    battles = [Battle("a", "b", Verdict.A, "p0"), Battle("b", "a", Verdict.B, "p0")] * 3 + [
        Battle("a", "b", Verdict.B, "p1"),
        Battle("b", "a", Verdict.A, "p1"),
    ] * 3
    arrays = battle_arrays(battles)
    with pytest.raises(ConvergenceError, match=r"bootstrap rounds resampled prompts"):
        bootstrap_bradley_terry(
            arrays.a_idx, arrays.b_idx, arrays.score_a, arrays.prompt_idx, 2, 50, np.random.default_rng(0)
        )
    boot = bootstrap_bradley_terry(
        arrays.a_idx, arrays.b_idx, arrays.score_a, arrays.prompt_idx, 2, 50, np.random.default_rng(0), prior=1.0
    )
    # With the prior every round is one of three tables: (p0, p1), (p0, p0) or (p1, p1).
    assert len(np.unique(np.round(boot.samples[:, 0], 6))) == 3


def test_bootstrap_needs_two_prompts() -> None:
    arrays = battle_arrays([Battle("a", "b", Verdict.A, "q"), Battle("b", "a", Verdict.A, "q")])
    with pytest.raises(InputError, match="at least 2 prompts"):
        bootstrap_bradley_terry(
            arrays.a_idx, arrays.b_idx, arrays.score_a, arrays.prompt_idx, 2, 10, np.random.default_rng(0)
        )

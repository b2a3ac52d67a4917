"""References for the Bradley-Terry prompt bootstrap (tests and benchmarks): the dense implementation and a
plain per-round loop.

:func:`bootstrap_bradley_terry_dense` is the previous implementation of
:func:`~qlora_eval.rating.bt_bootstrap.bootstrap_bradley_terry`: ``(P, m, m)`` per-prompt tables, one matrix
product for all rounds, all rounds fitted together by Newton's method. :func:`bootstrap_reference_loop`
collects each round's drawn battles and fits them with scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from qlora_eval.errors import ConvergenceError, InputError
from qlora_eval.rating.bradley_terry import (
    DEFAULT_BASE,
    DEFAULT_SCALE,
    BTBootstrap,
    BTFit,
    TieModel,
    _describe_unbounded,
    _effective_tables,
    _n_params,
    _names,
    _strongly_connected,
    _to_ratings,
    bootstrap_prompt_counts,
    count_tables,
    fit_bradley_terry,
    newton_fit_batch,
    prompt_count_tables,
    scipy_reference_fit,
)


def bootstrap_bradley_terry_dense(
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    score_a: np.ndarray,
    prompt_idx: np.ndarray,
    n_models: int,
    rounds: int,
    rng: np.random.Generator,
    *,
    tie_model: TieModel = TieModel.HALF_WIN,
    prior: float = 0.0,
    anchor: int | None = None,
    scale: float = DEFAULT_SCALE,
    base: float = DEFAULT_BASE,
    models: Sequence[str] | None = None,
) -> BTBootstrap:
    """The dense reference of :func:`bootstrap_bradley_terry`: ``(P, m, m)`` per-prompt tables, one matrix
    product for all rounds, all rounds fitted together by Newton's method.

    Kept as the tests' reference for the sparse path (same draws and, up to the solvers' tolerance, the
    same numbers when no two prompts have identical tables). Memory ``O(P m^2 + R m^2)``: small data only.

    Args:
        a_idx, b_idx, score_a: shape ``(n,)`` battle arrays.
        prompt_idx: shape ``(n,)``, prompt group of each battle (values ``0..P-1``; all are resampled together).
        n_models: ``m``.
        rounds: bootstrap rounds (default 1,000 in the CLI); at least 2.
        rng: the source of randomness for the resampling.
        tie_model, prior, anchor, scale, base, models: as in :func:`fit_bradley_terry`.

    Returns:
        The :class:`BTBootstrap`; ``samples`` has shape ``(rounds, m)``.

    Raises:
        InputError: when the battles cover fewer than 2 prompts (nothing to resample).
        ConvergenceError: when the full data has no finite estimate, or when some resampled rounds do not
            (the message says how many and what to do), or a fit fails to converge.
    """
    if rounds < 2:
        raise ValueError(f"the bootstrap needs at least 2 rounds, got {rounds}")
    g = np.asarray(prompt_idx, dtype=np.intp)
    n_prompts = int(g.max()) + 1 if g.size else 0
    if n_prompts < 2:
        # Resampling a single prompt repeats it every round: zero-width intervals that would look like certainty.
        raise InputError(
            f"the Bradley-Terry bootstrap resamples prompts and needs battles on at least 2 prompts, got {n_prompts}; "
            "add prompts or rate with Elo"
        )
    per_prompt_wins, per_prompt_ties = prompt_count_tables(a_idx, b_idx, score_a, g, n_prompts, n_models)
    point = fit_bradley_terry(
        per_prompt_wins.sum(axis=0),
        per_prompt_ties.sum(axis=0),
        tie_model=tie_model,
        prior=prior,
        anchor=anchor,
        scale=scale,
        base=base,
        models=models,
    )
    counts = bootstrap_prompt_counts(n_prompts, rounds, rng).astype(np.float64)
    mm = n_models * n_models
    round_wins = (counts @ per_prompt_wins.reshape(n_prompts, mm)).reshape(rounds, n_models, n_models)
    round_ties = (counts @ per_prompt_ties.reshape(n_prompts, mm)).reshape(rounds, n_models, n_models)
    return _bootstrap_from_tables(
        point,
        round_wins,
        round_ties,
        tie_model=tie_model,
        prior=prior,
        anchor=anchor,
        scale=scale,
        base=base,
        models=models,
    )


def _bootstrap_from_tables(
    point: BTFit,
    round_wins: np.ndarray,
    round_ties: np.ndarray,
    *,
    tie_model: TieModel,
    prior: float,
    anchor: int | None,
    scale: float,
    base: float,
    models: Sequence[str] | None,
) -> BTBootstrap:
    rounds, m, _ = round_wins.shape
    w_eff, t_eff = _effective_tables(round_wins, round_ties, tie_model, prior)
    ok = _strongly_connected(w_eff, t_eff)
    if tie_model is TieModel.DAVIDSON:
        ok &= (t_eff > 0).any(axis=(1, 2))
    if not ok.all():
        first_bad = int(np.flatnonzero(~ok)[0])
        reason = _describe_unbounded(w_eff[first_bad], t_eff[first_bad], _names(models, m)) or "no tie was drawn"
        raise ConvergenceError(
            f"{int((~ok).sum())} of {rounds} bootstrap rounds resampled prompts on which the estimate does not "
            f"exist (e.g. round {first_bad}: {reason}); the intervals would be unbounded. Add battles (more "
            "prompts), rate with a prior (virtual games, e.g. prior=1), or use Elo"
        )
    start = np.empty((rounds, _n_params(m, tie_model)))
    start[:, :m] = point.beta
    if point.tie_nu is not None:
        start[:, m] = math.log(point.tie_nu)
    z = newton_fit_batch(round_wins, round_ties, start, tie_model=tie_model, prior=prior)
    samples = _to_ratings(z[:, :m], anchor, scale, base)
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    return BTBootstrap(
        point=point,
        samples=samples,
        se=samples.std(axis=0, ddof=1),
        ci_low=low,
        ci_high=high,
        tie_nu_samples=np.exp(z[:, m]) if tie_model is TieModel.DAVIDSON else None,
    )


def bootstrap_reference_loop(
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    score_a: np.ndarray,
    prompt_idx: np.ndarray,
    n_models: int,
    prompt_counts: np.ndarray,
    *,
    tie_model: TieModel = TieModel.HALF_WIN,
    prior: float = 0.0,
    anchor: int | None = None,
    scale: float = DEFAULT_SCALE,
    base: float = DEFAULT_BASE,
) -> np.ndarray:
    """The bootstrap written plainly: per round, collect the drawn prompts' battles and fit them with scipy
    (:func:`scipy_reference_fit`).

    The benchmark's baseline and the tests' definition of :func:`bootstrap_bradley_terry`.

    Args:
        a_idx, b_idx, score_a, prompt_idx: shape ``(n,)`` battle arrays.
        n_models: ``m``.
        prompt_counts: shape ``(rounds, P)``, draws per prompt per round (see :func:`bootstrap_prompt_counts`).
        tie_model, prior, anchor, scale, base: as in :func:`fit_bradley_terry`.

    Returns:
        Shape ``(rounds, m)``, the anchored ratings of each round.
    """
    g = np.asarray(prompt_idx, dtype=np.intp)
    battles_of_prompt = [np.flatnonzero(g == p) for p in range(prompt_counts.shape[1])]
    out = np.empty((prompt_counts.shape[0], n_models))
    for r, row in enumerate(prompt_counts):
        chosen = np.concatenate([np.repeat(battles_of_prompt[p], int(c)) for p, c in enumerate(row) if c > 0])
        wins, ties = count_tables(
            np.asarray(a_idx)[chosen], np.asarray(b_idx)[chosen], np.asarray(score_a)[chosen], n_models
        )
        z = scipy_reference_fit(wins, ties, tie_model=tie_model, prior=prior)
        out[r] = _to_ratings(z[:n_models], anchor, scale, base)
    return out

"""The Bradley-Terry prompt bootstrap at Arena scale: sparse per-prompt tables, chunked rounds.

:func:`bootstrap_bradley_terry` keeps the prompt-level bootstrap (all battles of a prompt are drawn
together, ``P`` prompts with replacement per round) but never builds a ``(P, m, m)`` array: prompts are
stored sparsely and identical prompts merged (:mod:`.bt_tables`), each round's table is a weighted sum
of the distinct prompt tables, and rounds are processed in chunks whose size keeps memory at a few
tens of MB whatever ``R``. Each round is fitted by chord-Newton steps (Newton's method with the Hessian of
the point estimate, factored once: bootstrap tables are close to the full data, so the steps contract
fast), with gradients computed on the observed model pairs only; a round whose steps stop shrinking is
refitted by the full Newton method (:func:`~qlora_eval.rating.bradley_terry.newton_fit_batch`). Both
solve the same strictly convex problem, so they agree to the convergence tolerance.

:mod:`.bt_reference` holds the references the tests compare against: the previous dense implementation
and a plain per-round loop with scipy fits.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import numpy as np

from qlora_eval.errors import ConvergenceError, InputError
from qlora_eval.rating.bradley_terry import (
    _NEWTON_STEP_TOL,
    DEFAULT_BASE,
    DEFAULT_SCALE,
    BTBootstrap,
    BTFit,
    TieModel,
    _describe_unbounded,
    _effective_tables,
    _n_params,
    _names,
    _objective,
    _to_ratings,
    fit_bradley_terry,
    newton_fit_batch,
)
from qlora_eval.rating.bt_tables import PromptTypes, draw_type_counts, prompt_types

# Rounds per chunk: about this many cells (rounds x pairs, or rounds x m x m) at a time (8 MB per float64 array).
_CHUNK_CELLS = 1 << 20
_CHORD_MAX_ITER = 100
# From this many round x pair cells per chunk on, HALF_WIN rounds are fitted by the compiled iteration
# (bt_kernel; same steps, same stopping rule); below it numpy is fast enough and numba's import is not paid.
_COMPILED_CHORD_MIN_CELLS = 200_000


def _check_bootstrap_args(rounds: int, prompt_idx: np.ndarray) -> int:
    if rounds < 2:
        raise ValueError(f"the bootstrap needs at least 2 rounds, got {rounds}")
    n_prompts = int(prompt_idx.max()) + 1 if prompt_idx.size else 0
    if n_prompts < 2:
        # Resampling a single prompt repeats it every round: zero-width intervals that would look like certainty.
        raise InputError(
            f"the Bradley-Terry bootstrap resamples prompts and needs battles on at least 2 prompts, got {n_prompts}; "
            "add prompts or rate with Elo"
        )
    return n_prompts


def bootstrap_bradley_terry(
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
    """Point fit plus a bootstrap that resamples prompts, on sparse tables in chunks of rounds.

    Args:
        a_idx, b_idx, score_a: shape ``(n,)`` battle arrays.
        prompt_idx: shape ``(n,)``, prompt group of each battle (values ``0..P-1``; all are resampled together).
        n_models: ``m``.
        rounds: bootstrap rounds (default 1,000 in the CLI); at least 2.
        rng: the source of randomness for the resampling.
        tie_model, prior, anchor, scale, base, models: as in
            :func:`~qlora_eval.rating.bradley_terry.fit_bradley_terry`.

    Returns:
        The :class:`BTBootstrap`; ``samples`` has shape ``(rounds, m)``.

    Raises:
        InputError: when the battles cover fewer than 2 prompts (nothing to resample).
        ConvergenceError: when the full data has no finite estimate, or when some resampled rounds do not
            (the message says how many and what to do), or a fit fails to converge.
    """
    g = np.asarray(prompt_idx, dtype=np.intp)
    n_prompts = _check_bootstrap_args(rounds, g)
    threads = len(os.sched_getaffinity(0))
    types = prompt_types(a_idx, b_idx, score_a, g, n_prompts, n_models)
    m = n_models
    full_w, full_t = types.dense(*types.round_tables(types.multiplicity[None, :]))
    point = fit_bradley_terry(
        full_w[0], full_t[0], tie_model=tie_model, prior=prior, anchor=anchor, scale=scale, base=base, models=models
    )
    start = np.empty(_n_params(m, tie_model))
    start[:m] = point.beta
    if point.tie_nu is not None:
        start[m] = math.log(point.tie_nu)
    w_point, t_point = _effective_tables(full_w, full_t, tie_model, prior)
    _, _, hessian = _objective(start[None], w_point, t_point, tie_model, with_hessian=True)
    assert hessian is not None
    h_inv = np.linalg.inv(hessian[0])
    # HALF_WIN without a prior only touches observed pairs: fit on (B, Q) pair arrays, never (B, m, m).
    pairwise = tie_model is TieModel.HALF_WIN and prior == 0.0
    width = types.pair_lo.shape[0] if pairwise else m * m
    chunk = max(1, min(rounds, _CHUNK_CELLS // width))
    full_pairs = types.round_tables(types.multiplicity[None, :])
    z = np.empty((rounds, start.shape[0]))
    bad = 0
    first_bad: tuple[int, str] | None = None
    for lo in range(0, rounds, chunk):
        hi = min(rounds, lo + chunk)
        # The draws of successive chunks continue one stream: the same counts as one (rounds, K) draw.
        counts = draw_type_counts(types, hi - lo, rng, threads=threads)
        pairs = types.round_tables(counts)
        ok = _rounds_ok(types, pairs, full_pairs, tie_model, prior)
        if not ok.all():
            bad += int((~ok).sum())
            index = int(np.flatnonzero(~ok)[0])
            w_bad, t_bad = types.dense(*(v[index : index + 1] for v in pairs))
            w_eff, t_eff = _effective_tables(w_bad[0], t_bad[0], tie_model, prior)
            reason = _describe_unbounded(w_eff, t_eff, _names(models, m)) or "no tie was drawn"
            first_bad = first_bad or (lo + index, reason)
        if bad:
            continue  # the error below is certain: count the bad rounds, fit nothing more
        z[lo:hi] = _chord_fit(types, pairs, start, h_inv, tie_model, prior, pairwise, threads)
    if first_bad is not None:
        raise ConvergenceError(
            f"{bad} of {rounds} bootstrap rounds resampled prompts on which the estimate does not "
            f"exist (e.g. round {first_bad[0]}: {first_bad[1]}); the intervals would be unbounded. Add battles "
            "(more prompts), rate with a prior (virtual games, e.g. prior=1), or use Elo"
        )
    return _summarise(point, z, m, tie_model, anchor, scale, base)


def _summarise(
    point: BTFit, z: np.ndarray, m: int, tie_model: TieModel, anchor: int | None, scale: float, base: float
) -> BTBootstrap:
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


def _rounds_ok(
    types: PromptTypes,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    full_pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    tie_model: TieModel,
    prior: float,
) -> np.ndarray:
    """Per round (shape ``(B,)`` bool): the estimate exists (strongly connected win graph; a tie for DAVIDSON).

    A round that kept every directed edge of the full data has the full data's graph, which the point fit
    has checked; only the others are searched.
    """
    wins_lo, wins_hi, ties = pairs
    ok = np.ones(wins_lo.shape[0], dtype=bool)
    if tie_model is TieModel.DAVIDSON:
        ok &= (ties > 0).any(axis=1)
    if prior > 0:
        return ok  # virtual games connect every pair both ways
    forward = (wins_lo + ties) > 0
    backward = (wins_hi + ties) > 0
    full_forward = (full_pairs[0] + full_pairs[2]) > 0
    full_backward = (full_pairs[1] + full_pairs[2]) > 0
    doubtful = np.flatnonzero(((full_forward & ~forward) | (full_backward & ~backward)).any(axis=1))
    if doubtful.size:
        w, t = types.dense(wins_lo[doubtful], wins_hi[doubtful], ties[doubtful])
        ok[doubtful] &= strongly_connected_rounds((w + t) > 0)
    return ok


def strongly_connected_rounds(edges: np.ndarray) -> np.ndarray:
    """Whether each directed graph is strongly connected, by breadth-first search from model 0 both ways.

    ``O(B m^2)`` per search step (a handful of steps on battle graphs), instead of the ``log m`` matrix
    squarings (``O(B m^3)``) of :func:`~qlora_eval.rating.bradley_terry.reachability`.

    Args:
        edges: shape ``(B, m, m)`` bool, ``edges[b, i, j]``: ``i`` beat or tied ``j`` in round ``b``.

    Returns:
        Shape ``(B,)`` bool.
    """
    rounds, m, _ = edges.shape
    e = edges.astype(np.float32)
    ok = np.ones(rounds, dtype=bool)
    for graph in (e, np.swapaxes(e, 1, 2)):
        reached = np.zeros((rounds, 1, m), dtype=np.float32)
        reached[:, 0, 0] = 1.0
        for _ in range(m):
            grown = np.minimum(reached + np.matmul(reached, graph), 1.0)
            if np.array_equal(grown, reached):
                break
            reached = grown
        ok &= reached[:, 0, :].all(axis=1)
    return ok


def _chord_fit(
    types: PromptTypes,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    start: np.ndarray,
    h_inv: np.ndarray,
    tie_model: TieModel,
    prior: float,
    pairwise: bool,
    threads: int,
) -> np.ndarray:
    """Fit ``B`` rounds from the point estimate with steps ``-H0^{-1} grad``; stragglers get full Newton.

    Args:
        types: the prompt types (for the model pairs and dense tables).
        pairs: ``(wins_lo, wins_hi, ties)``, each ``(B, Q)``, the rounds' per-pair totals.
        start: shape ``(d,)`` point estimate; ``h_inv``: shape ``(d, d)``, inverse Hessian there.
        tie_model, prior: as in :func:`bootstrap_bradley_terry`.
        pairwise: compute HALF_WIN gradients on the pairs (requires ``prior == 0``), else on dense tables.
        threads: threads of the compiled iteration, used from ``_COMPILED_CHORD_MIN_CELLS`` round-pairs on.

    Returns:
        Shape ``(B, d)`` fitted parameters, ``beta`` with sum 0.
    """
    rounds = pairs[0].shape[0]
    if pairwise and rounds * types.pair_lo.shape[0] >= _COMPILED_CHORD_MIN_CELLS:
        # Large problems: the same iteration compiled (numba imported only here).
        from qlora_eval.rating.bt_kernel import compiled_chord_half_win

        wins_lo, wins_hi, ties = pairs
        z, straggler = compiled_chord_half_win(
            types.pair_lo,
            types.pair_hi,
            wins_lo + 0.5 * ties,
            wins_lo + wins_hi + ties,
            start,
            h_inv,
            tol=_NEWTON_STEP_TOL,
            max_iter=_CHORD_MAX_ITER,
            threads=threads,
        )
        return _finish(z, straggler, types, pairs, start, tie_model, prior)
    gradient: Callable[[np.ndarray, np.ndarray], np.ndarray]
    if pairwise:
        gradient = _PairGradient(types, pairs)
    else:
        w_eff, t_eff = _effective_tables(*types.dense(*pairs), tie_model, prior)

        def gradient(z: np.ndarray, rows: np.ndarray) -> np.ndarray:
            _, grad, _ = _objective(z, w_eff[rows], t_eff[rows], tie_model, with_hessian=False)
            return grad

    z = np.tile(start, (rounds, 1))
    active = np.arange(rounds)
    previous = np.full(rounds, np.inf)
    straggler = np.zeros(rounds, dtype=bool)
    for _ in range(_CHORD_MAX_ITER):
        if active.size == 0:
            break
        step = -(gradient(z[active], active) @ h_inv)
        size = np.abs(step).max(axis=1)
        # A chord step that does not shrink means the round is too far from the point estimate's curvature.
        stalled = size >= previous[active]
        straggler[active[stalled]] = True
        moving = ~stalled
        z[active[moving]] += step[moving]
        previous[active] = size
        active = active[moving & (size >= _NEWTON_STEP_TOL)]
    straggler[active] = True
    return _finish(z, straggler, types, pairs, start, tie_model, prior)


def _finish(
    z: np.ndarray,
    straggler: np.ndarray,
    types: PromptTypes,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    start: np.ndarray,
    tie_model: TieModel,
    prior: float,
) -> np.ndarray:
    """Refit the stragglers by full Newton, centre ``beta``."""
    m = types.n_models
    if straggler.any():
        idx = np.flatnonzero(straggler)
        w, t = types.dense(*(v[idx] for v in pairs))
        z[idx] = newton_fit_batch(w, t, np.tile(start, (idx.size, 1)), tie_model=tie_model, prior=prior)
    z[:, :m] -= z[:, :m].mean(axis=1, keepdims=True)
    return z


class _PairGradient:
    """The HALF_WIN gradient of :func:`~qlora_eval.rating.bradley_terry._objective` without a prior, on the
    observed pairs only (each pair once, no likelihood value): ``(B, Q)`` work instead of ``(B, m, m)``."""

    def __init__(self, types: PromptTypes, pairs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        wins_lo, wins_hi, ties = pairs
        self.lo = types.pair_lo
        self.hi = types.pair_hi
        self.m = types.n_models
        self.w_lo = wins_lo + 0.5 * ties  # a tie is half a win each way
        self.n = wins_lo + wins_hi + ties

    def __call__(self, z: np.ndarray, rows: np.ndarray) -> np.ndarray:
        m = self.m
        beta = z[:, :m]
        p = 0.5 * (1.0 + np.tanh(0.5 * (beta[:, self.lo] - beta[:, self.hi])))  # P(lo beats hi), (B, Q)
        residual = self.n[rows] * p - self.w_lo[rows]  # d nll / d beta_lo; the negative for beta_hi
        offset = np.arange(rows.shape[0], dtype=np.intp)[:, None] * m
        size = rows.shape[0] * m
        weights = residual.ravel()
        grad = np.bincount((offset + self.lo).ravel(), weights, size) - np.bincount(
            (offset + self.hi).ravel(), weights, size
        )
        out: np.ndarray = grad.reshape(rows.shape[0], m) + beta.sum(axis=1, keepdims=True)
        return out

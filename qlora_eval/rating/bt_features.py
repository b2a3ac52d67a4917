"""Bradley-Terry with covariates: a first-position advantage and style controls, with a prompt bootstrap.

Model: battle ``n`` shows ``a`` first and ``b`` second; its linear predictor is
``x_n = beta_a - beta_b + z_n . gamma``, where ``z_n`` (shape ``(c,)``) holds the battle's covariates:
a constant 1 for the first-position advantage (home advantage in sport), and the normalised
differences of answer style between the first and the second answer (:mod:`.style`). Ties are half a
win each way (``HALF_WIN``: ``P(first wins) = sigmoid(x)``) or Davidson's model (``P(first wins) = e^{x/2}/D``,
``P(tie) = nu / D``, ``D = e^{x/2} + e^{-x/2} + nu``). ``beta`` is then free of position and style: the
ratings a judge without those preferences would give. ``gamma`` in Elo points (``scale / ln 10 * gamma``)
is what each covariate is worth.

Fits run on *units*: distinct (first, second, outcome, covariates) rows with a count per prompt, so that
a design without style covariates collapses to at most ``3 m^2`` units whatever the number of battles.
Each bootstrap round draws ``P`` prompts with replacement (all battles of a prompt together, both orders
and all judges), which reweights the units; all rounds of a chunk are fitted together by Newton's method
with step halving, warm-started at the point estimate. The objective adds ``(sum beta)^2 / 2`` to fix the
translation (zero at the optimum), as :mod:`.bradley_terry` does; ``prior`` adds virtual games between every
pair at a neutral venue (covariates 0), split evenly, as there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qlora_eval.errors import ConvergenceError
from qlora_eval.rating.bradley_terry import DEFAULT_BASE, DEFAULT_SCALE, TieModel, bootstrap_prompt_counts
from qlora_eval.rating.bt_bootstrap import strongly_connected_rounds

_MAX_ITER = 100
_STEP_TOL = 1e-9
_CHUNK_CELLS = 1 << 21  # rounds x units per chunk (16 MB per float64 array)
_FIRST, _SECOND, _TIE = 0, 1, 2
_SEPARATED = (
    "the Bradley-Terry fit with covariates has no finite estimate: a model never lost or never won (add virtual "
    "games: --prior 1), or a covariate decides every verdict (e.g. the judge always picked the longer answer, so "
    "the length coefficient is unbounded: add verdicts, or drop that covariate from --control)"
)


@dataclass(frozen=True, eq=False)
class FeatureFit:
    """A Bradley-Terry fit with covariates and its prompt bootstrap.

    Attributes:
        beta: shape ``(m,)``, strengths (natural-log units, sum 0) of the full data.
        gamma: shape ``(c,)``, covariate coefficients (natural-log units) of the full data.
        tie_nu: Davidson's tie parameter (None for ``HALF_WIN``).
        beta_samples: shape ``(R, m)``, ``beta`` of each bootstrap round (sum 0 each).
        gamma_samples: shape ``(R, c)``.
        names: the covariate names, aligned with ``gamma``.
        iterations: Newton steps of the point fit.
    """

    beta: np.ndarray
    gamma: np.ndarray
    tie_nu: float | None
    beta_samples: np.ndarray
    gamma_samples: np.ndarray
    names: tuple[str, ...]
    iterations: int

    def ratings(self, scale: float = DEFAULT_SCALE, base: float = DEFAULT_BASE) -> tuple[np.ndarray, np.ndarray]:
        """Point ratings ``(m,)`` and bootstrap ratings ``(R, m)`` on the Elo scale, mean ``base``."""
        c = scale / math.log(10.0)
        return base + c * self.beta, base + c * self.beta_samples

    def coefficients_elo(self, scale: float = DEFAULT_SCALE) -> tuple[np.ndarray, np.ndarray]:
        """Covariate coefficients in Elo points: point ``(c,)`` and bootstrap samples ``(R, c)``."""
        c = scale / math.log(10.0)
        return c * self.gamma, c * self.gamma_samples


@dataclass(frozen=True, eq=False)
class _Units:
    """Distinct battle rows and their counts per prompt.

    Attributes:
        a, b: shape ``(U,)``, first- and second-shown model.
        outcome: shape ``(U,)``, ``_FIRST``/``_SECOND``/``_TIE``.
        z: shape ``(U, c)``, covariates.
        per_prompt: sparse ``(P, U)``, how often each unit occurs on each prompt.
    """

    a: np.ndarray
    b: np.ndarray
    outcome: np.ndarray
    z: np.ndarray
    per_prompt: Any


def _units(
    a_idx: np.ndarray, b_idx: np.ndarray, outcome: np.ndarray, z: np.ndarray, prompt_idx: np.ndarray, n_prompts: int
) -> _Units:
    rows = np.column_stack([a_idx.astype(np.float64), b_idx.astype(np.float64), outcome.astype(np.float64), z])
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    from scipy import sparse

    # Sparse (P, U): Arena-sized stores have many prompts and, with style covariates, about one unit per battle.
    per_prompt = sparse.csr_matrix((np.ones(inverse.size), (prompt_idx, inverse)), shape=(n_prompts, unique.shape[0]))
    return _Units(
        a=unique[:, 0].astype(np.intp),
        b=unique[:, 1].astype(np.intp),
        outcome=unique[:, 2].astype(np.int8),
        z=np.ascontiguousarray(unique[:, 3:]),
        per_prompt=per_prompt,
    )


@dataclass(frozen=True, eq=False)
class _Design:
    """The fit's view of the units (the prior's virtual games appended), with sparse helpers.

    Attributes:
        a, b, outcome: shape ``(U,)``; z: shape ``(U, c)``; m: models.
        signs: sparse ``(U, m)``, ``+1`` at a, ``-1`` at b: ``x = signs @ beta + z @ gamma``.
        pairs: sparse ``(U, m * m)``: ``+1`` at (a, a) and (b, b), ``-1`` at (a, b) and (b, a): one unit's
            contribution to the ``beta`` block of the Hessian, per unit of its curvature.
        zz: shape ``(U, c * c)``, outer products of the covariates.
        constant: shape ``(U,)``, the prior's fixed weights (0 for real units; virtual games come last).
    """

    a: np.ndarray
    b: np.ndarray
    outcome: np.ndarray
    z: np.ndarray
    m: int
    signs: Any
    pairs: Any
    zz: np.ndarray
    constant: np.ndarray

    @property
    def k(self) -> int:
        """Linear parameters: ``m + c``."""
        return self.m + self.z.shape[1]


def _design(units: _Units, m: int, prior: float) -> _Design:
    from scipy import sparse

    c = units.z.shape[1]
    a, b, outcome, z = units.a, units.b, units.outcome, units.z
    extra = np.zeros(0)
    if prior > 0:
        i, j = np.triu_indices(m, k=1)
        # A virtual win each way per pair, at a neutral venue (no position, no style): prior / 2 wins each.
        a = np.concatenate([a, i, j])
        b = np.concatenate([b, j, i])
        outcome = np.concatenate([outcome, np.full(2 * i.size, _FIRST, dtype=np.int8)])
        z = np.concatenate([z, np.zeros((2 * i.size, c))])
        extra = np.full(2 * i.size, 0.5 * prior)
    u = np.arange(a.size)
    ones = np.ones(a.size)
    signs = sparse.csr_matrix(
        (np.concatenate([ones, -ones]), (np.concatenate([u, u]), np.concatenate([a, b]))), shape=(a.size, m)
    )
    cols = np.concatenate([a * m + a, b * m + b, a * m + b, b * m + a])
    vals = np.concatenate([ones, ones, -ones, -ones])
    pairs = sparse.csr_matrix((vals, (np.tile(u, 4), cols)), shape=(a.size, m * m))
    zz = (z[:, :, None] * z[:, None, :]).reshape(a.size, c * c)
    constant = np.concatenate([np.zeros(units.a.size), extra])
    return _Design(a, b, outcome, np.ascontiguousarray(z), m, signs, pairs, zz, constant)


def _right(dense: np.ndarray, matrix: Any) -> np.ndarray:
    """``dense @ matrix`` for a dense ``(B, U)`` and a sparse ``(U, K)``: shape ``(B, K)``."""
    out: np.ndarray = np.asarray((matrix.T @ dense.T).T)
    return out


def _objective(
    params: np.ndarray, weights: np.ndarray, design: _Design, tie_model: TieModel, with_hessian: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Penalised negative log likelihood, gradient, Hessian for ``B`` weightings at once.

    Shapes: ``params`` ``(B, d)`` (``m`` strengths, ``c`` coefficients, then ``log nu`` for Davidson); ``weights``
    ``(B, U)``; returns ``(B,)``, ``(B, d)``, ``(B, d, d)``. The strength block of the Hessian is accumulated
    through the sparse pair matrix, so the cost is ``O(B U (1 + c^2))``, not ``O(B U (m + c)^2)``.
    """
    m, k = design.m, design.k
    c = k - m
    beta = params[:, :m]
    x = beta[:, design.a] - beta[:, design.b] + params[:, m:k] @ design.z.T  # (B, U) linear predictors
    first = design.outcome == _FIRST
    second = design.outcome == _SECOND
    tie = design.outcome == _TIE
    hxt = gxt = htt = None
    if tie_model is TieModel.HALF_WIN:
        y = first + 0.5 * tie  # (U,)
        f = (weights * (np.logaddexp(0.0, -x) + (1.0 - y) * x)).sum(axis=1)
        p = 0.5 * (1.0 + np.tanh(0.5 * x))
        gx = weights * (p - y)
        hxx = weights * p * (1.0 - p)
    else:
        theta = params[:, k][:, None]
        half = 0.5 * x
        log_d = np.logaddexp(np.logaddexp(half, -half), theta)
        u, v, q = np.exp(half - log_d), np.exp(-half - log_d), np.exp(theta - log_d)
        a = 0.5 * (u - v)
        sign = first.astype(np.float64) - second
        f = (weights * (log_d - 0.5 * sign * x - tie * theta)).sum(axis=1)
        gx = weights * (a - 0.5 * sign)
        gxt = (weights * (q - tie)).sum(axis=1)
        hxx = weights * (0.25 * (u + v) - a * a)
        hxt = weights * (-a * q)
        htt = (weights * q * (1.0 - q)).sum(axis=1)
    total = beta.sum(axis=1)
    f = f + 0.5 * total**2
    grad = np.zeros_like(params)
    grad[:, :m] = _right(gx, design.signs) + total[:, None]
    grad[:, m:k] = gx @ design.z
    if gxt is not None:
        grad[:, k] = gxt
    if not with_hessian:
        return f, grad, None
    batch, d = params.shape
    hess = np.zeros((batch, d, d))
    hess[:, :m, :m] = _right(hxx, design.pairs).reshape(batch, m, m) + 1.0
    for j in range(c):
        cross = _right(hxx * design.z[:, j], design.signs)
        hess[:, :m, m + j] = cross
        hess[:, m + j, :m] = cross
    hess[:, m:k, m:k] = (hxx @ design.zz).reshape(batch, c, c)
    if hxt is not None and htt is not None:
        cross_theta = np.concatenate([_right(hxt, design.signs), hxt @ design.z], axis=1)
        hess[:, :k, k] = cross_theta
        hess[:, k, :k] = cross_theta
        hess[:, k, k] = htt
    return f, grad, hess


def _newton(start: np.ndarray, weights: np.ndarray, design: _Design, tie_model: TieModel) -> tuple[np.ndarray, int]:
    z = np.array(start, dtype=np.float64, copy=True)
    active = np.ones(z.shape[0], dtype=bool)
    iterations = 0
    for _ in range(_MAX_ITER):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        iterations += 1
        za, wa = z[idx], weights[idx]
        f, grad, hess = _objective(za, wa, design, tie_model, with_hessian=True)
        assert hess is not None
        try:
            step = -np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            raise ConvergenceError(_SEPARATED) from None
        done = np.abs(step).max(axis=1) < _STEP_TOL
        scale = np.ones(idx.size)
        candidate = za + step
        for _halving in range(40):
            f_new, _, _ = _objective(candidate, wa, design, tie_model, with_hessian=False)
            worse = ~(f_new <= f + 1e-12 * np.abs(f))
            if not worse.any():
                break
            scale[worse] *= 0.5
            candidate[worse] = za[worse] + scale[worse, None] * step[worse]
        z[idx] = candidate
        active[idx[done]] = False
    if active.any() or not np.all(np.isfinite(z)):
        raise ConvergenceError(f"{int(active.sum())} of {z.shape[0]} fits did not converge: {_SEPARATED}")
    z[:, : design.m] -= z[:, : design.m].mean(axis=1, keepdims=True)
    return z, iterations


def _connected(weights: np.ndarray, units: _Units, m: int) -> np.ndarray:
    """Per weighting ``(B,)``: the win graph (ties both ways) is strongly connected, so ``beta`` is finite."""
    from scipy import sparse

    n = units.a.size
    w = weights[:, :n]
    won_first = np.flatnonzero(units.outcome != _SECOND)
    won_second = np.flatnonzero(units.outcome != _FIRST)
    # Per model pair, summed over units: (B, U) @ (U, m*m) sparse one-hot matrices of "winner beat loser".
    rows = np.concatenate([won_first, won_second])
    cols = np.concatenate([(units.a * m + units.b)[won_first], (units.b * m + units.a)[won_second]])
    beat_hot = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, m * m))
    beat = _right(w, beat_hot).reshape(-1, m, m)
    ok: np.ndarray = strongly_connected_rounds(beat > 0)
    return ok


def fit_bt_features(
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    score_a: np.ndarray,
    prompt_idx: np.ndarray,
    covariates: np.ndarray,
    names: Sequence[str],
    n_models: int,
    rounds: int,
    rng: np.random.Generator,
    *,
    tie_model: TieModel = TieModel.HALF_WIN,
    prior: float = 0.0,
    models: Sequence[str] | None = None,
) -> FeatureFit:
    """Fit Bradley-Terry with covariates on all battles, then bootstrap prompts.

    Args:
        a_idx, b_idx: shape ``(n,)``, first- and second-shown model of each valid battle.
        score_a: shape ``(n,)``, 1 first wins, 0 second wins, 0.5 tie.
        prompt_idx: shape ``(n,)``, prompt group ``0..P-1`` (all battles of a prompt are drawn together).
        covariates: shape ``(n, c)``, each battle's covariates (a column of ones for the position advantage).
        names: ``c`` covariate names.
        n_models: ``m``.
        rounds: bootstrap rounds (at least 2).
        rng: the source of randomness of the resampling.
        tie_model: ``HALF_WIN`` or ``DAVIDSON``.
        prior: virtual games per pair (0: plain maximum likelihood).
        models: names for error messages.

    Returns:
        The :class:`FeatureFit`.

    Raises:
        ConvergenceError: no finite estimate on the full data or on some bootstrap rounds (the message names
            ``--prior``), no tie for Davidson, or a fit that does not converge.
    """
    m = n_models
    z = np.asarray(covariates, dtype=np.float64).reshape(np.shape(a_idx)[0], -1)
    if z.shape[1] != len(names):
        raise ValueError(f"covariates have {z.shape[1]} columns but {len(names)} names")
    if rounds < 2:
        raise ValueError(f"the bootstrap needs at least 2 rounds, got {rounds}")
    s = np.asarray(score_a, dtype=np.float64)
    outcome = np.where(s == 1.0, _FIRST, np.where(s == 0.0, _SECOND, _TIE)).astype(np.int8)
    g = np.asarray(prompt_idx, dtype=np.intp)
    n_prompts = int(g.max()) + 1
    units = _units(np.asarray(a_idx), np.asarray(b_idx), outcome, z, g, n_prompts)
    design = _design(units, m, prior)
    constant = design.constant
    n_real = units.a.size
    if tie_model is TieModel.DAVIDSON and not (units.outcome == _TIE).any():
        raise ConvergenceError("the Davidson tie model needs at least one tie; use --ties half")
    full = np.concatenate([np.asarray(units.per_prompt.sum(axis=0)).reshape(-1), constant[n_real:]])[None, :]
    names_ = list(models) if models is not None else [f"model {i}" for i in range(m)]
    if prior == 0 and not _connected(full, units, m)[0]:
        raise ConvergenceError(
            "some models never lost (or never won) against the others, so their Bradley-Terry rating is unbounded "
            f"(models: {', '.join(names_)}); add battles, rate with virtual games (--prior 1), or use --method elo"
        )
    d = design.k + (1 if tie_model is TieModel.DAVIDSON else 0)
    point, iterations = _newton(np.zeros((1, d)), full, design, tie_model)
    samples = np.empty((rounds, d))
    n_units = constant.size
    chunk = max(1, _CHUNK_CELLS // max(1, n_units, n_prompts))
    bad = 0
    for lo in range(0, rounds, chunk):
        hi = min(rounds, lo + chunk)
        # Successive chunks continue rng's stream: the same counts as one (rounds, P) draw.
        counts = bootstrap_prompt_counts(n_prompts, hi - lo, rng).astype(np.float64)
        weights = _right(counts, units.per_prompt)
        weights = np.concatenate([weights, np.broadcast_to(constant[n_real:], (hi - lo, n_units - n_real))], 1)
        ok = np.ones(hi - lo, dtype=bool) if prior > 0 else _connected(weights, units, m)
        if tie_model is TieModel.DAVIDSON:
            ok &= (weights[:, :n_real][:, units.outcome == _TIE] > 0).any(axis=1)
        bad += int((~ok).sum())
        if bad:
            continue
        samples[lo:hi], _ = _newton(np.repeat(point, hi - lo, axis=0), weights, design, tie_model)
    if bad:
        raise ConvergenceError(
            f"{bad} of {rounds} bootstrap rounds resampled prompts on which the estimate does not exist (a model "
            "never lost or never won there); add prompts, rate with virtual games (--prior 1), or use --method elo"
        )
    k = design.k
    return FeatureFit(
        beta=point[0, :m],
        gamma=point[0, m:k],
        tie_nu=float(math.exp(point[0, k])) if tie_model is TieModel.DAVIDSON else None,
        beta_samples=samples[:, :m],
        gamma_samples=samples[:, m:k],
        names=tuple(names),
        iterations=iterations,
    )

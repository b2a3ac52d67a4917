"""Bradley-Terry ratings by maximum likelihood, on the Elo scale, with a prompt bootstrap.

Model: model ``i`` has strength ``beta_i`` (natural-log units); ``P(i beats j) = 1 / (1 + exp(beta_j - beta_i))``.
Reported ratings are ``base + scale / ln(10) * beta``, so with ``scale=400`` a 400-point lead means 10:1
odds, as in Elo. Ratings are anchored so that their mean is ``base`` (1000), or, when an anchor model is
named, so that the anchor is exactly ``base`` (its bootstrap interval is then zero-width by definition).

Fits run on aggregated count tables, never on battle lists: ``wins[..., i, j]`` counts decisive wins
of ``i`` over ``j`` and ``ties[..., i, j] == ties[..., j, i]`` counts ties (TIE and BOTH_BAD) between them.

Ties:
    * ``TieModel.HALF_WIN`` (default): a tie is half a win each way, the classic treatment.
    * ``TieModel.DAVIDSON``: Davidson (1970): ``P(i wins) = pi_i / D``, ``P(tie) = nu sqrt(pi_i pi_j) / D``
      with ``D = pi_i + pi_j + nu sqrt(pi_i pi_j)`` and ``pi = exp(beta)``. Among decisive outcomes it is
      the same logistic model, so ratings stay on the Elo scale; ``nu`` (fitted) measures how tie-prone
      the judge is (``P(tie)`` between equals is ``nu / (2 + nu)``).

Identifiability: the likelihood only sees rating differences, so the objective adds ``(sum beta)^2 / 2``,
which pins the translation without shrinking any difference (at the optimum the sum is exactly 0).
Existence: the maximum-likelihood estimate is finite only when every group of models has lost (or
tied) at least once to a model outside it (Zermelo/Ford). Otherwise we raise :class:`ConvergenceError`
naming the models, instead of returning an arbitrary large number; ``prior > 0`` adds that many virtual
games between every pair (split evenly), a Bayesian shrinkage that always makes the estimate finite.

The point fit uses Newton's method with step halving on the negative log likelihood (numpy only: importing
``scipy.optimize`` would cost a large share of a ``qlora-eval rank`` process); :func:`scipy_reference_fit`
solves the same problem with scipy's L-BFGS-B, and the tests and the benchmark's reference loop use it as
the independent check. The bootstrap over prompts (all battles of a prompt, both orders and all judges,
stay together) lives in :mod:`.bt_bootstrap`: sparse per-prompt tables (:mod:`.bt_tables`) at any scale,
and the dense ``(P, m, m)`` version as its reference. This module keeps the tables, the objective, the
fits and the vectorised Newton method with step halving that both use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from qlora_eval.errors import ConvergenceError

DEFAULT_SCALE = 400.0
DEFAULT_BASE = 1000.0
DEFAULT_BOOTSTRAP_ROUNDS = 1_000

_NEWTON_MAX_ITER = 100
_NEWTON_STEP_TOL = 1e-10  # largest parameter change (natural-log units) of a converged full Newton step
_GRAD_TOL = 1e-6  # largest |gradient| per battle accepted from L-BFGS-B


class TieModel(Enum):
    """How ties (TIE and BOTH_BAD verdicts) enter the likelihood."""

    HALF_WIN = "half_win"
    DAVIDSON = "davidson"


@dataclass(frozen=True, eq=False)
class BTFit:
    """One Bradley-Terry fit of ``m`` models.

    Attributes:
        ratings: shape ``(m,)``, on the Elo scale (``base + scale/ln10 * beta``, anchored).
        beta: shape ``(m,)``, natural-log strengths with sum 0.
        tie_nu: Davidson's tie parameter ``nu``; None for ``TieModel.HALF_WIN``.
        nll: negative log likelihood at the optimum (penalty included, which is 0 there).
        iterations: optimizer iterations.
    """

    ratings: np.ndarray
    beta: np.ndarray
    tie_nu: float | None
    nll: float
    iterations: int


@dataclass(frozen=True, eq=False)
class BTBootstrap:
    """Bradley-Terry point estimate plus a bootstrap over prompts.

    Attributes:
        point: the fit on all battles (its ``ratings`` are the reported ratings).
        samples: shape ``(rounds, m)``, the anchored ratings of each bootstrap round.
        se: shape ``(m,)``, standard deviation of ``samples`` (the bootstrap standard error).
        ci_low: shape ``(m,)``, 2.5th percentile of ``samples``.
        ci_high: shape ``(m,)``, 97.5th percentile of ``samples``.
        tie_nu_samples: shape ``(rounds,)`` for ``TieModel.DAVIDSON``, else None.
    """

    point: BTFit
    samples: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    tie_nu_samples: np.ndarray | None


def count_tables(
    a_idx: np.ndarray, b_idx: np.ndarray, score_a: np.ndarray, n_models: int
) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate battles into decisive-win and tie tables.

    Args:
        a_idx, b_idx: shape ``(n,)``, indices of the first- and second-shown model.
        score_a: shape ``(n,)``, 1 (first wins), 0 (second wins) or 0.5 (tie).
        n_models: ``m``.

    Returns:
        ``(wins, ties)``, each of shape ``(m, m)`` float64: ``wins[i, j]`` decisive wins of ``i`` over ``j``;
        ``ties`` symmetric.
    """
    wins, ties = prompt_count_tables(a_idx, b_idx, score_a, np.zeros(np.shape(a_idx), dtype=np.intp), 1, n_models)
    return wins[0], ties[0]


def prompt_count_tables(
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    score_a: np.ndarray,
    prompt_idx: np.ndarray,
    n_prompts: int,
    n_models: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-prompt decisive-win and tie tables (what the bootstrap reweights).

    Args:
        a_idx, b_idx, score_a: shape ``(n,)`` battle arrays.
        prompt_idx: shape ``(n,)``, the prompt group of each battle, in ``[0, n_prompts)``.
        n_prompts: ``P``.
        n_models: ``m``.

    Returns:
        ``(wins, ties)``, each of shape ``(P, m, m)`` float64.
    """
    a = np.asarray(a_idx, dtype=np.intp)
    b = np.asarray(b_idx, dtype=np.intp)
    s = np.asarray(score_a, dtype=np.float64)
    g = np.asarray(prompt_idx, dtype=np.intp)
    wins = np.zeros((n_prompts, n_models, n_models))
    ties = np.zeros((n_prompts, n_models, n_models))
    first = s == 1.0
    second = s == 0.0
    tie = ~(first | second)
    np.add.at(wins, (g[first], a[first], b[first]), 1.0)
    np.add.at(wins, (g[second], b[second], a[second]), 1.0)
    np.add.at(ties, (g[tie], a[tie], b[tie]), 1.0)
    np.add.at(ties, (g[tie], b[tie], a[tie]), 1.0)
    return wins, ties


def _effective_tables(
    wins: np.ndarray, ties: np.ndarray, tie_model: TieModel, prior: float
) -> tuple[np.ndarray, np.ndarray]:
    """The tables the likelihood uses: ties folded in as half wins (HALF_WIN), the prior added as wins."""
    m = wins.shape[-1]
    off_diagonal = 1.0 - np.eye(m)
    w = wins + (0.5 * prior) * off_diagonal
    if tie_model is TieModel.HALF_WIN:
        return w + 0.5 * ties, np.zeros_like(ties)
    return w, ties


def _n_params(m: int, tie_model: TieModel) -> int:
    return m + (1 if tie_model is TieModel.DAVIDSON else 0)


def _objective(
    z: np.ndarray, w: np.ndarray, t: np.ndarray, tie_model: TieModel, with_hessian: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Penalised negative log likelihood, gradient and (optionally) Hessian, batched.

    Args:
        z: shape ``(B, d)``: ``beta`` (``m`` columns), then ``log nu`` for DAVIDSON.
        w: shape ``(B, m, m)`` effective win table; t: shape ``(B, m, m)`` tie table (zeros for HALF_WIN).

    Returns:
        ``f`` shape ``(B,)``, gradient shape ``(B, d)``, Hessian shape ``(B, d, d)`` or None.
    """
    m = w.shape[-1]
    beta = z[:, :m]
    x = beta[:, :, None] - beta[:, None, :]  # x[b, i, j] = beta_i - beta_j
    total = beta.sum(axis=1)
    grad = np.empty_like(z)
    hess = None
    if tie_model is TieModel.HALF_WIN:
        n = w + np.swapaxes(w, 1, 2)
        f = (w * np.logaddexp(0.0, -x)).sum(axis=(1, 2))
        p = 0.5 * (1.0 + np.tanh(0.5 * x))  # sigmoid(x), stable for any x
        grad[:, :m] = -(w.sum(axis=2) - (n * p).sum(axis=2))
        if with_hessian:
            weight = n * p * (1.0 - p)
            hess = np.zeros((z.shape[0], m, m))
            hess[:, :m, :m] = -weight
            idx = np.arange(m)
            hess[:, idx, idx] += weight.sum(axis=2)
    else:
        theta = z[:, m]
        n = w + np.swapaxes(w, 1, 2) + t
        half = 0.5 * x
        log_d = np.logaddexp(np.logaddexp(half, -half), theta[:, None, None])
        up = np.exp(half - log_d)  # e^{x/2} / D
        down = np.exp(-half - log_d)  # e^{-x/2} / D
        q = np.exp(theta[:, None, None] - log_d)  # nu / D, the tie probability
        a = 0.5 * (up - down)  # sinh(x/2) / D
        f = -((w * half).sum(axis=(1, 2)) + 0.5 * ((t * theta[:, None, None]) - n * log_d).sum(axis=(1, 2)))
        grad[:, :m] = -(0.5 * (w.sum(axis=2) - w.sum(axis=1)) - (n * a).sum(axis=2))
        grad[:, m] = -0.5 * (t - n * q).sum(axis=(1, 2))
        if with_hessian:
            h = np.exp(-2.0 * log_d) + 0.25 * q * (up + down)  # (1 + nu cosh(x/2) / 2) / D^2
            weight = n * h
            hess = np.zeros((z.shape[0], m + 1, m + 1))
            hess[:, :m, :m] = -weight
            idx = np.arange(m)
            hess[:, idx, idx] += weight.sum(axis=2)
            cross = -(n * a * q).sum(axis=2)
            hess[:, :m, m] = cross
            hess[:, m, :m] = cross
            hess[:, m, m] = 0.5 * (n * q * (1.0 - q)).sum(axis=(1, 2))
    # (sum beta)^2 / 2 fixes the translation; it is 0 at the optimum, so it shrinks nothing.
    f = f + 0.5 * total**2
    grad[:, :m] += total[:, None]
    if hess is not None:
        hess[:, :m, :m] += 1.0
    return f, grad, hess


def _describe_unbounded(w: np.ndarray, t: np.ndarray, models: Sequence[str]) -> str | None:
    """Why the MLE does not exist for one table pair, or None when it does (shapes ``(m, m)``)."""
    beat = (w + t) > 0  # beat[i, j]: i beat or tied j at least once
    reach = reachability(beat)
    if reach.all():
        return None
    undefeated = []
    seen: set[int] = set()
    for i in range(beat.shape[0]):
        if i in seen:
            continue
        inside = reach[i] & reach[:, i]  # the strongly connected component of i
        seen.update(int(j) for j in np.flatnonzero(inside))
        if not beat[np.ix_(~inside, inside)].any():
            undefeated.append(sorted(models[int(j)] for j in np.flatnonzero(inside)))
    groups = "; ".join("{" + ", ".join(g) + "}" for g in undefeated)
    return (
        f"model group(s) {groups} never lost to (or tied with) any model outside the group, so their "
        "Bradley-Terry rating is unbounded (no maximum-likelihood estimate)"
    )


def reachability(edges: np.ndarray) -> np.ndarray:
    """Transitive closure of directed graphs given as boolean adjacency matrices.

    Args:
        edges: shape ``(..., m, m)`` bool, ``edges[..., i, j]``: an edge from ``i`` to ``j``.

    Returns:
        Shape ``(..., m, m)`` bool: ``j`` can be reached from ``i`` (every node reaches itself).
    """
    m = edges.shape[-1]
    reach = edges.astype(np.float64) + np.eye(m)
    for _ in range(max(1, math.ceil(math.log2(max(m, 2))))):
        reach = np.minimum(np.matmul(reach, reach), 1.0)  # paths of length up to 2^k
    out: np.ndarray = reach > 0
    return out


def _strongly_connected(w: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-table existence check of the MLE for ``(B, m, m)`` tables; returns shape ``(B,)`` bool."""
    ok: np.ndarray = np.asarray(reachability((w + t) > 0).all(axis=(1, 2)))
    return ok


def _to_ratings(beta: np.ndarray, anchor: int | None, scale: float, base: float) -> np.ndarray:
    """Natural-log strengths (..., m) to anchored Elo-scale ratings."""
    ref = beta.mean(axis=-1, keepdims=True) if anchor is None else beta[..., anchor : anchor + 1]
    out: np.ndarray = base + (scale / math.log(10.0)) * (beta - ref)
    return out


def _names(models: Sequence[str] | None, m: int) -> Sequence[str]:
    return models if models is not None else [f"model {i}" for i in range(m)]


def _check_tables(wins: np.ndarray, ties: np.ndarray, prior: float, tie_model: TieModel) -> None:
    if wins.shape != ties.shape or wins.shape[-1] != wins.shape[-2]:
        raise ValueError(f"wins and ties must both have shape (..., m, m), got {wins.shape} and {ties.shape}")
    if prior < 0 or not math.isfinite(prior):
        raise ValueError(f"prior must be a finite number >= 0, got {prior}")
    if not isinstance(tie_model, TieModel):
        raise ValueError(f"tie_model must be a TieModel, got {tie_model!r}")


def fit_bradley_terry(
    wins: np.ndarray,
    ties: np.ndarray,
    *,
    tie_model: TieModel = TieModel.HALF_WIN,
    prior: float = 0.0,
    anchor: int | None = None,
    scale: float = DEFAULT_SCALE,
    base: float = DEFAULT_BASE,
    models: Sequence[str] | None = None,
) -> BTFit:
    """Maximum-likelihood Bradley-Terry ratings from count tables (Newton's method with step halving).

    Args:
        wins: shape ``(m, m)``, ``wins[i, j]`` decisive wins of ``i`` over ``j``.
        ties: shape ``(m, m)``, symmetric tie counts.
        tie_model: how ties enter the likelihood (see the module docstring).
        prior: virtual games added between every pair of models (split evenly); 0 = plain MLE.
        anchor: index of the model fixed at ``base``; None anchors the mean at ``base``.
        scale: Elo scale (400).
        base: the anchor value (1000).
        models: names used in error messages.

    Returns:
        The :class:`BTFit`.

    Raises:
        ConvergenceError: when the estimate does not exist (a group of models never lost or never won,
            ties counting both ways), when DAVIDSON sees no tie at all, or when the optimizer fails.
    """
    _check_tables(wins, ties, prior, tie_model)
    m = wins.shape[-1]
    names = _names(models, m)
    w, t = _effective_tables(np.asarray(wins, dtype=np.float64), np.asarray(ties, dtype=np.float64), tie_model, prior)
    reason = _describe_unbounded(w, t, names)
    if reason is not None:
        raise ConvergenceError(f"{reason}. Add battles, rate with a prior (virtual games, e.g. prior=1), or use Elo")
    if tie_model is TieModel.DAVIDSON and not (t > 0).any():
        raise ConvergenceError(
            "the Davidson tie model needs at least one tie (its tie parameter goes to 0); use the half-win tie model"
        )
    # Newton's method with step halving (the same solver as the bootstrap): the likelihood is concave and
    # the check above guarantees a finite optimum, and it avoids importing scipy.optimize (~0.3-0.5 s of
    # `qlora-eval rank` start-up). The tests compare it with scipy's L-BFGS-B.
    z, iterations = _newton(w[None], t[None], np.zeros((1, _n_params(m, tie_model))), tie_model)
    f, grad, _ = _objective(z, w[None], t[None], tie_model, with_hessian=False)
    tolerance = _GRAD_TOL * max(1.0, float(w.sum() + 0.5 * t.sum()))
    if not np.all(np.isfinite(z)) or np.abs(grad).max() > tolerance:
        raise ConvergenceError(
            f"the Bradley-Terry fit did not converge (largest gradient {np.abs(grad).max():.3g}). "
            "Try a prior (e.g. prior=1) or rate with Elo"
        )
    x = z[0]
    beta = x[:m] - x[:m].mean()
    return BTFit(
        ratings=_to_ratings(beta, anchor, scale, base),
        beta=beta,
        tie_nu=float(math.exp(x[m])) if tie_model is TieModel.DAVIDSON else None,
        nll=float(f[0]),
        iterations=iterations,
    )


def scipy_reference_fit(
    wins: np.ndarray, ties: np.ndarray, *, tie_model: TieModel = TieModel.HALF_WIN, prior: float = 0.0
) -> np.ndarray:
    """The same maximum-likelihood problem solved by scipy's L-BFGS-B (the independent reference).

    Args:
        wins, ties: shape ``(m, m)`` count tables, as in :func:`fit_bradley_terry`.
        tie_model, prior: as in :func:`fit_bradley_terry`.

    Returns:
        Shape ``(d,)``: ``beta`` (sum 0), then ``log nu`` for DAVIDSON.

    Raises:
        ConvergenceError: when L-BFGS-B reports failure.
    """
    from scipy.optimize import minimize

    _check_tables(wins, ties, prior, tie_model)
    w, t = _effective_tables(np.asarray(wins, dtype=np.float64), np.asarray(ties, dtype=np.float64), tie_model, prior)
    m = w.shape[-1]

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        f, g, _ = _objective(z[None], w[None], t[None], tie_model, with_hessian=False)
        return float(f[0]), g[0]

    res = minimize(
        fun,
        np.zeros(_n_params(m, tie_model)),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-10},
    )
    if not res.success and not np.all(np.isfinite(res.x)):
        raise ConvergenceError(f"L-BFGS-B failed: {res.message}")
    z: np.ndarray = res.x.copy()
    z[:m] -= z[:m].mean()
    return z


def newton_fit_batch(
    wins: np.ndarray,
    ties: np.ndarray,
    start: np.ndarray,
    *,
    tie_model: TieModel = TieModel.HALF_WIN,
    prior: float = 0.0,
) -> np.ndarray:
    """Fit ``B`` Bradley-Terry problems at once by Newton's method with per-problem step halving.

    The objective is the one :func:`fit_bradley_terry` minimises. The caller must make sure every table
    has a finite estimate (see :func:`bootstrap_bradley_terry`).

    Args:
        wins: shape ``(B, m, m)`` decisive-win tables.
        ties: shape ``(B, m, m)`` symmetric tie tables.
        start: shape ``(B, d)`` starting parameters: ``beta`` (``m``), then ``log nu`` for DAVIDSON.
        tie_model: the tie model.
        prior: virtual games per pair (as in :func:`fit_bradley_terry`).

    Returns:
        Shape ``(B, d)``, the fitted parameters (``beta`` with sum 0).

    Raises:
        ConvergenceError: when some problem has not converged after the iteration limit.
    """
    _check_tables(wins, ties, prior, tie_model)
    w, t = _effective_tables(np.asarray(wins, dtype=np.float64), np.asarray(ties, dtype=np.float64), tie_model, prior)
    z, _ = _newton(w, t, start, tie_model)
    return z


def _newton(w: np.ndarray, t: np.ndarray, start: np.ndarray, tie_model: TieModel) -> tuple[np.ndarray, int]:
    """Newton iterations on effective tables ``w``, ``t`` of shape ``(B, m, m)``; returns (params, iterations)."""
    z = np.array(start, dtype=np.float64, copy=True)
    iterations = 0
    active = np.ones(z.shape[0], dtype=bool)
    for _ in range(_NEWTON_MAX_ITER):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        iterations += 1
        za, wa, ta = z[idx], w[idx], t[idx]
        f, grad, hess = _objective(za, wa, ta, tie_model, with_hessian=True)
        assert hess is not None
        step = -np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        done = np.abs(step).max(axis=1) < _NEWTON_STEP_TOL
        # Step halving: far from the optimum a full Newton step can overshoot on the logistic likelihood.
        scale = np.ones(idx.size)
        candidate = za + step
        for _halving in range(40):
            f_new, _, _ = _objective(candidate, wa, ta, tie_model, with_hessian=False)
            worse = ~(f_new <= f + 1e-12 * np.abs(f))
            if not worse.any():
                break
            scale[worse] *= 0.5
            candidate[worse] = za[worse] + scale[worse, None] * step[worse]
        z[idx] = candidate
        active[idx[done]] = False
    if active.any():
        raise ConvergenceError(
            f"{int(active.sum())} of {z.shape[0]} Bradley-Terry bootstrap fits did not converge in "
            f"{_NEWTON_MAX_ITER} Newton steps; try a prior (e.g. prior=1) or rate with Elo"
        )
    m = w.shape[-1]
    z[:, :m] -= z[:, :m].mean(axis=1, keepdims=True)
    return z, iterations


def bootstrap_prompt_counts(n_prompts: int, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """How often each prompt is drawn in each bootstrap round (``P`` draws with replacement per round).

    Returns:
        Shape ``(rounds, P)`` int64; every row sums to ``P``.
    """
    if n_prompts < 1 or rounds < 1:
        raise ValueError(f"need n_prompts >= 1 and rounds >= 1, got {n_prompts} and {rounds}")
    counts: np.ndarray = rng.multinomial(n_prompts, np.full(n_prompts, 1.0 / n_prompts), size=rounds)
    return counts

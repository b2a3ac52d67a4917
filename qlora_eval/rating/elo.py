"""Elo ratings as in the QLoRA paper: start 1000, K=32, scale 400, averaged over random battle orderings.

Each ordering replays every valid battle once, in a random order, updating the two ratings after each
battle. The final ratings of all orderings form a distribution; the paper reports its mean. We report
the mean, the standard error of that mean (``std / sqrt(R)``: how precisely R orderings pin the mean
down) and the 2.5/97.5 percentiles across orderings (how much the order of battles alone moves a rating).

:func:`fit_elo` draws and replays each ordering inside a compiled kernel (:mod:`.elo_kernel`, numba),
one seeded generator per ordering, so results do not depend on the thread count. The numpy path stays
as the tested reference: :func:`fit_elo_reference` draws an ``(R, n)`` permutation array
(:func:`random_orderings`) and :func:`elo_ratings` replays all ``R`` orderings together, one battle
position at a time, on a ratings array of shape ``(R, m)``; :func:`elo_reference_loop` is the plain
per-ordering loop that both are checked against.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

DEFAULT_K = 32.0
DEFAULT_SCALE = 400.0
DEFAULT_INITIAL = 1000.0
DEFAULT_ORDERINGS = 10_000
# Orderings are drawn and replayed in this many independent chunks (see fit_elo).
_CHUNKS = 4


@dataclass(frozen=True, eq=False)
class EloResult:
    """Elo ratings over ``R`` orderings of ``m`` models.

    Attributes:
        samples: shape ``(R, m)``, the final ratings after each ordering.
        mean: shape ``(m,)``, mean over orderings (the reported rating).
        std: shape ``(m,)``, standard deviation over orderings.
        se: shape ``(m,)``, standard error of the mean, ``std / sqrt(R)``.
        ci_low: shape ``(m,)``, 2.5th percentile over orderings.
        ci_high: shape ``(m,)``, 97.5th percentile over orderings.
    """

    samples: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray


def random_orderings(n_battles: int, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """``rounds`` independent, uniformly random permutations of ``range(n_battles)``.

    Args:
        n_battles: number of battles ``n``.
        rounds: number of orderings ``R``.
        rng: the source of randomness.

    Returns:
        Shape ``(R, n)``, row ``r`` is ordering ``r``; int16 when ``n`` fits (a quarter of the memory
        of intp, which matters at 10,000 x thousands), else int32/int64.
    """
    if n_battles < 1 or rounds < 1:
        raise ValueError(f"need n_battles >= 1 and rounds >= 1, got {n_battles} and {rounds}")
    dtype: type[np.signedinteger] = np.int16
    if n_battles > np.iinfo(np.int16).max + 1:
        dtype = np.int32 if n_battles <= np.iinfo(np.int32).max + 1 else np.int64
    perms = np.empty((rounds, n_battles), dtype=dtype)
    perms[:] = np.arange(n_battles, dtype=dtype)
    rng.permuted(perms, axis=1, out=perms)
    return perms


def _check_inputs(
    a_idx: np.ndarray, b_idx: np.ndarray, score_a: np.ndarray, n_models: int, orderings: np.ndarray
) -> None:
    n = a_idx.shape[0]
    if a_idx.shape != (n,) or b_idx.shape != (n,) or score_a.shape != (n,):
        raise ValueError(
            f"a_idx, b_idx and score_a must all have shape (n,), got {a_idx.shape}, {b_idx.shape}, {score_a.shape}"
        )
    if orderings.ndim != 2 or orderings.shape[1] != n:
        raise ValueError(f"orderings must have shape (R, {n}), got {orderings.shape}")
    if n and (min(a_idx.min(), b_idx.min()) < 0 or max(a_idx.max(), b_idx.max()) >= n_models):
        raise ValueError(f"model indices must lie in [0, {n_models})")


def elo_ratings(
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    score_a: np.ndarray,
    n_models: int,
    orderings: np.ndarray,
    *,
    k: float = DEFAULT_K,
    scale: float = DEFAULT_SCALE,
    initial: float = DEFAULT_INITIAL,
) -> np.ndarray:
    """Final Elo ratings after replaying the battles in each ordering (vectorised across orderings).

    After battle ``(a, b, s)``: ``e = 1 / (1 + 10 ** ((r_b - r_a) / scale))``, ``r_a += k (s - e)``,
    ``r_b -= k (s - e)``.

    Args:
        a_idx: shape ``(n,)``, index of the first-shown model of each battle.
        b_idx: shape ``(n,)``, index of the second-shown model.
        score_a: shape ``(n,)``, score of the first-shown model (1, 0 or 0.5).
        n_models: number of models ``m``.
        orderings: shape ``(R, n)``, each row a permutation of ``range(n)`` (see :func:`random_orderings`).
        k: the K factor.
        scale: the logistic scale (400: a 400-point lead means 10:1 odds).
        initial: every model's starting rating.

    Returns:
        Shape ``(R, m)`` float64, the final ratings of each ordering.
    """
    a = np.ascontiguousarray(a_idx, dtype=np.intp)
    b = np.ascontiguousarray(b_idx, dtype=np.intp)
    s = np.ascontiguousarray(score_a, dtype=np.float64)
    _check_inputs(a, b, s, n_models, orderings)
    rounds, n = orderings.shape
    # Ratings live in natural-log units (x = r ln10 / scale) so the expected score is 1 / (1 + exp(x_b - x_a))
    # without a multiply per step; they are flattened so one gather fetches ratings[r, a[r]] for all r.
    c = math.log(10.0) / scale
    kc = k * c
    kc_s = kc * s
    ratings = np.full(rounds * n_models, initial * c)
    row_offset = np.arange(rounds, dtype=np.intp) * n_models
    for t in range(n):
        p = orderings[:, t].astype(np.intp)  # the t-th battle of every ordering, shape (R,)
        ia = a.take(p)
        ia += row_offset
        ib = b.take(p)
        ib += row_offset
        xa = ratings.take(ia)
        xb = ratings.take(ib)
        delta = np.subtract(xb, xa)
        np.exp(delta, out=delta)
        delta += 1.0
        np.divide(kc, delta, out=delta)  # k c e_a
        np.subtract(kc_s.take(p), delta, out=delta)  # k c (s - e_a)
        xa += delta
        xb -= delta
        ratings[ia] = xa
        ratings[ib] = xb
    out: np.ndarray = ratings.reshape(rounds, n_models) / c
    return out


def elo_reference_loop(
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    score_a: np.ndarray,
    n_models: int,
    orderings: np.ndarray,
    *,
    k: float = DEFAULT_K,
    scale: float = DEFAULT_SCALE,
    initial: float = DEFAULT_INITIAL,
) -> np.ndarray:
    """The same as :func:`elo_ratings`, written as a plain Python loop per ordering and per battle.

    It is the definition the vectorised version must match (tests) and the baseline the benchmark
    measures the speed-up against. Arguments and result as in :func:`elo_ratings`.
    """
    a = [int(v) for v in a_idx]
    b = [int(v) for v in b_idx]
    s = [float(v) for v in score_a]
    _check_inputs(np.asarray(a_idx), np.asarray(b_idx), np.asarray(score_a), n_models, orderings)
    out = np.empty((orderings.shape[0], n_models))
    for r, order in enumerate(orderings.tolist()):
        ratings = [initial] * n_models
        for i in order:
            ra, rb = ratings[a[i]], ratings[b[i]]
            expected_a = 1.0 / (1.0 + 10.0 ** ((rb - ra) / scale))
            delta = k * (s[i] - expected_a)
            ratings[a[i]] = ra + delta
            ratings[b[i]] = rb - delta
        out[r] = ratings
    return out


def summarize_elo(samples: np.ndarray) -> EloResult:
    """Mean, spread and percentiles of per-ordering ratings.

    Args:
        samples: shape ``(R, m)`` with ``R >= 2``.

    Returns:
        The :class:`EloResult` of those samples.
    """
    if samples.ndim != 2 or samples.shape[0] < 2:
        raise ValueError(f"need samples of shape (R >= 2, m), got {samples.shape}")
    rounds = samples.shape[0]
    std = samples.std(axis=0, ddof=1)
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    return EloResult(
        samples=samples,
        mean=samples.mean(axis=0),
        std=std,
        se=std / math.sqrt(rounds),
        ci_low=low,
        ci_high=high,
    )


def fit_elo(
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    score_a: np.ndarray,
    n_models: int,
    rounds: int,
    rng: np.random.Generator,
    *,
    k: float = DEFAULT_K,
    scale: float = DEFAULT_SCALE,
    initial: float = DEFAULT_INITIAL,
    threads: int | None = None,
) -> EloResult:
    """Elo over ``rounds`` random orderings, each drawn and replayed inside the compiled kernel.

    ``rng`` gives one 64-bit key per ordering; ordering ``r`` is a uniform permutation drawn from its
    key alone (see :mod:`qlora_eval.rating.elo_kernel`), so the result depends only on ``rng``, never on
    ``threads`` or the machine's core count. Memory: ``O(R m)``, no permutation array.

    Args:
        a_idx, b_idx, score_a: shape ``(n,)`` battle arrays (see :func:`elo_ratings`).
        n_models: number of models ``m``.
        rounds: number of random orderings ``R`` (the paper uses 10,000); at least 2.
        rng: the source of randomness for the orderings.
        k, scale, initial: the Elo constants.
        threads: threads replaying the orderings; None uses the CPUs this process may run on.

    Returns:
        The :class:`EloResult`; ``samples`` has shape ``(R, m)``.
    """
    if rounds < 2:
        raise ValueError(f"Elo needs at least 2 orderings to give an interval, got {rounds}")
    a = np.ascontiguousarray(a_idx, dtype=np.intp)
    b = np.ascontiguousarray(b_idx, dtype=np.intp)
    s = np.ascontiguousarray(score_a, dtype=np.float64)
    _check_inputs(a, b, s, n_models, np.empty((1, a.shape[0]), dtype=np.int8))
    # Imported here: numba costs ~0.15 s to import, which Bradley-Terry runs need not pay.
    from qlora_eval.rating.elo_kernel import compiled_elo_ratings
    from qlora_eval.rating.rng_kernel import round_keys

    workers = threads if threads is not None else len(os.sched_getaffinity(0))
    samples = compiled_elo_ratings(
        a, b, s, n_models, round_keys(rounds, rng), k=k, scale=scale, initial=initial, threads=workers
    )
    return summarize_elo(samples)


def fit_elo_reference(
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    score_a: np.ndarray,
    n_models: int,
    rounds: int,
    rng: np.random.Generator,
    *,
    k: float = DEFAULT_K,
    scale: float = DEFAULT_SCALE,
    initial: float = DEFAULT_INITIAL,
) -> EloResult:
    """The numpy reference path of :func:`fit_elo`: orderings drawn by :func:`random_orderings` as an
    ``(R, n)`` array, replayed by :func:`elo_ratings`.

    Same distribution as :func:`fit_elo`, different draws (so different numbers for the same seed); the
    tests and the benchmark compare the two. Needs ``R x n`` permutation memory.

    Args:
        a_idx, b_idx, score_a: shape ``(n,)`` battle arrays (see :func:`elo_ratings`).
        n_models: number of models ``m``.
        rounds: number of random orderings ``R`` (the paper uses 10,000); at least 2.
        rng: the source of randomness for the orderings.
        k, scale, initial: the Elo constants.

    Returns:
        The :class:`EloResult`; ``samples`` has shape ``(R, m)``.
    """
    if rounds < 2:
        raise ValueError(f"Elo needs at least 2 orderings to give an interval, got {rounds}")
    n = int(np.shape(a_idx)[0])
    # The orderings are split into a fixed number of chunks, each with its own child generator, so the
    # result depends only on ``rng`` (never on how many cores ran it); numpy releases the GIL inside
    # the shuffle and the gathers, so the chunks run in parallel threads.
    chunk_rounds = [len(c) for c in np.array_split(np.arange(rounds), min(_CHUNKS, rounds))]
    children = rng.spawn(len(chunk_rounds))

    def replay(chunk: int) -> np.ndarray:
        orderings = random_orderings(n, chunk_rounds[chunk], children[chunk])
        return elo_ratings(a_idx, b_idx, score_a, n_models, orderings, k=k, scale=scale, initial=initial)

    workers = max(1, min(len(chunk_rounds), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        samples = np.concatenate(list(pool.map(replay, range(len(chunk_rounds)))), axis=0)
    return summarize_elo(samples)

"""Elo with bootstrap resampling: how much the ratings would move on other prompts, not just other orders.

Each round draws ``P`` prompts with replacement (all battles of a drawn prompt together: both orders and
every judge), then replays the drawn battles in one random order with the paper's Elo update (K=32, scale
400, start 1000). The interval is the 2.5-97.5 percentiles of the rounds' final ratings and ``se`` their
standard deviation (the bootstrap standard error); the point estimate stays the paper's: the mean over
random orderings of the full data (:func:`~qlora_eval.rating.elo.fit_elo`). This is what FastChat's
bootstrap Elo measures, with the prompt (not the single battle) as the unit that is resampled, because
the two orders and the judges of one prompt are not independent.

Like :mod:`.elo_kernel`, every round is drawn and replayed inside one compiled kernel from its own 64-bit
key (:func:`~qlora_eval.rating.rng_kernel.round_keys`), so the result depends only on the caller's
generator, never on the thread count.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from qlora_eval.rating.elo import DEFAULT_INITIAL, DEFAULT_K, DEFAULT_SCALE, EloResult, fit_elo
from qlora_eval.rating.elo_kernel import _B_SHIFT, _MODEL_MASK, _SCORE_SHIFT, pack_battles
from qlora_eval.rating.rng_kernel import _U64, _bounded, _seed, round_keys

_BLOCK = 64


@numba.njit(cache=True, nogil=True)
def _bootstrap_replay(
    records: np.ndarray,
    offsets: np.ndarray,
    half_kc: float,
    kc: float,
    x0: float,
    keys: np.ndarray,
    out: np.ndarray,
) -> None:
    """Fill ``out[r]`` (natural-log units) with the final ratings of bootstrap round ``r``.

    Shapes: ``records`` ``(n,)`` int64 packed battles sorted by prompt; ``offsets`` ``(P + 1,)``: prompt ``p``'s
    battles are ``records[offsets[p]:offsets[p + 1]]``; ``keys`` ``(R,)`` uint64; ``out`` ``(R, m)``.
    """
    rounds, m = out.shape
    n_prompts = offsets.shape[0] - 1
    picks = np.empty(n_prompts, dtype=np.int64)
    buf = np.empty(records.shape[0], dtype=np.int64)  # a round draws about n battles; grown when it draws more
    for r in range(rounds):
        s0, s1, s2, s3 = _seed(keys[r])
        total = 0
        for i in range(n_prompts):
            j, s0, s1, s2, s3 = _bounded(_U64(n_prompts), s0, s1, s2, s3)
            picks[i] = np.int64(j)
            total += offsets[picks[i] + 1] - offsets[picks[i]]
        if total > buf.shape[0]:
            buf = np.empty(total, dtype=np.int64)
        pos = 0
        for i in range(n_prompts):
            for t in range(offsets[picks[i]], offsets[picks[i] + 1]):
                buf[pos] = records[t]
                pos += 1
        x = out[r]
        for i in range(m):
            x[i] = x0
        for t in range(total):
            # Inside-out Fisher-Yates: battle t of the ordering is a uniform pick among those not yet replayed.
            if t < total - 1:
                j, s0, s1, s2, s3 = _bounded(_U64(total - t), s0, s1, s2, s3)
                k = t + np.int64(j)
                rec = buf[k]
                buf[k] = buf[t]
            else:
                rec = buf[t]
            ia = rec & _MODEL_MASK
            ib = (rec >> _B_SHIFT) & _MODEL_MASK
            xa = x[ia]
            xb = x[ib]
            delta = half_kc * (rec >> _SCORE_SHIFT) - kc / (1.0 + math.exp(xb - xa))
            x[ia] = xa + delta
            x[ib] = xb - delta


def bootstrap_elo_samples(
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    score_a: np.ndarray,
    prompt_idx: np.ndarray,
    n_models: int,
    keys: np.ndarray,
    *,
    k: float = DEFAULT_K,
    scale: float = DEFAULT_SCALE,
    initial: float = DEFAULT_INITIAL,
    threads: int = 1,
) -> np.ndarray:
    """Final Elo ratings of one bootstrap round per key.

    Args:
        a_idx, b_idx, score_a: shape ``(n,)`` battle arrays.
        prompt_idx: shape ``(n,)``, prompt group ``0..P-1`` of each battle.
        n_models: ``m``.
        keys: shape ``(R,)`` uint64, one per round.
        k, scale, initial: the Elo constants.
        threads: threads replaying blocks of rounds (the result does not depend on it).

    Returns:
        Shape ``(R, m)`` float64.
    """
    g = np.asarray(prompt_idx, dtype=np.int64)
    order = np.argsort(g, kind="stable")
    n_prompts = int(g.max()) + 1
    offsets = np.zeros(n_prompts + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(g, minlength=n_prompts))
    records = pack_battles(np.asarray(a_idx)[order], np.asarray(b_idx)[order], np.asarray(score_a)[order])
    c = math.log(10.0) / scale
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    rounds = keys.shape[0]
    out = np.empty((rounds, n_models), dtype=np.float64)

    def run(start: int) -> None:
        stop = min(start + _BLOCK, rounds)
        _bootstrap_replay(records, offsets, 0.5 * k * c, k * c, initial * c, keys[start:stop], out[start:stop])

    starts = range(0, rounds, _BLOCK)
    if threads <= 1 or rounds <= _BLOCK:
        for start in starts:
            run(start)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(run, starts))
    out /= c
    return out


def fit_elo_bootstrap(
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    score_a: np.ndarray,
    prompt_idx: np.ndarray,
    n_models: int,
    rounds: int,
    rng: np.random.Generator,
    *,
    k: float = DEFAULT_K,
    scale: float = DEFAULT_SCALE,
    initial: float = DEFAULT_INITIAL,
    threads: int | None = None,
) -> EloResult:
    """The paper's Elo (mean over ``rounds`` orderings of the full data) with prompt-bootstrap intervals.

    Seed discipline: ``rng`` first gives the orderings of the point estimate (exactly what
    :func:`~qlora_eval.rating.elo.fit_elo` draws), then one key per bootstrap round.

    Args:
        a_idx, b_idx, score_a: shape ``(n,)`` battle arrays.
        prompt_idx: shape ``(n,)``, prompt group of each battle (values ``0..P-1``).
        n_models: ``m``.
        rounds: orderings of the point estimate and bootstrap rounds (at least 2 each).
        rng: the source of randomness.
        k, scale, initial: the Elo constants.
        threads: threads; None uses the CPUs this process may run on.

    Returns:
        An :class:`~qlora_eval.rating.elo.EloResult` whose ``mean`` is the mean over orderings of the full
        data, ``samples`` the ``(rounds, m)`` bootstrap ratings, ``std``/``se`` their standard deviation
        (the bootstrap standard error) and ``ci_low``/``ci_high`` their 2.5/97.5 percentiles.

    Raises:
        InputError: fewer than 2 prompts (nothing to resample).
    """
    from qlora_eval.errors import InputError

    g = np.asarray(prompt_idx, dtype=np.intp)
    n_prompts = int(g.max()) + 1 if g.size else 0
    if n_prompts < 2:
        raise InputError(
            f"Elo bootstrap intervals resample prompts and need battles on at least 2 prompts, got {n_prompts}; "
            "add prompts or use --elo-intervals orderings"
        )
    workers = threads if threads is not None else len(os.sched_getaffinity(0))
    point = fit_elo(a_idx, b_idx, score_a, n_models, rounds, rng, k=k, scale=scale, initial=initial, threads=workers)
    samples = bootstrap_elo_samples(
        a_idx, b_idx, score_a, g, n_models, round_keys(rounds, rng), k=k, scale=scale, initial=initial, threads=workers
    )
    std = samples.std(axis=0, ddof=1)
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    return EloResult(samples=samples, mean=point.mean, std=std, se=std, ci_low=low, ci_high=high)

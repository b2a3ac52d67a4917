"""The compiled Elo replay: each ordering is drawn and replayed inside one numba kernel.

Why compiled: the numpy path (:func:`qlora_eval.rating.elo.elo_ratings` on
:func:`~qlora_eval.rating.elo.random_orderings`) needs an ``(R, n)`` permutation array (770 MB for
10,000 orderings of 38,544 battles) and one Python-level step per battle position. Here every round
shuffles its own ``(n,)`` index buffer (Fisher-Yates, drawn on the fly) and replays it at once, so memory
is ``O(R m + threads n)``.

Reproducibility: round ``r`` draws from its own xoshiro256** generator, seeded (through SplitMix64)
from ``keys[r]``, a 64-bit key the caller draws from its ``numpy.random.Generator``. A round's result
depends only on its key, never on which thread ran it, so the output is identical for any number of
threads. The kernel itself is serial and releases the GIL; :func:`compiled_elo_ratings` hands blocks of
rounds to a thread pool (no numba threading layer: it would add ~0.3 s to every process start).

numba is a core dependency; it is imported here only, and this module is imported only when Elo runs.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from qlora_eval.rating.jit import cached_njit
from qlora_eval.rating.rng_kernel import _U64, _bounded, _seed

_B_SHIFT = 24
_SCORE_SHIFT = 48
_MODEL_LIMIT = (1 << _B_SHIFT) - 1
_MODEL_MASK = _MODEL_LIMIT
# Rounds per task handed to a thread: small enough to balance 2-16 threads, large enough to amortise the call.
_BLOCK = 64
_LANES = 4  # rounds replayed side by side in one thread (see _replay)


@cached_njit()
def _shuffle(order: np.ndarray, key: np.uint64) -> None:
    """Fisher-Yates shuffle of ``order`` in place with the round generator of ``key`` (same draws as the replay)."""
    s0, s1, s2, s3 = _seed(key)
    n = order.shape[0]
    for t in range(n - 1):
        j, s0, s1, s2, s3 = _bounded(_U64(n - t), s0, s1, s2, s3)
        k = t + np.int64(j)
        tmp = order[t]
        order[t] = order[k]
        order[k] = tmp


@cached_njit(nogil=True)
def _replay(records: np.ndarray, half_kc: float, kc: float, x0: float, keys: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out[r]`` (natural-log units) with the final ratings of the ordering drawn from ``keys[r]``.

    Shapes: ``records``: ``(n,)`` int64 packed battles (see :func:`pack_battles`); ``keys``: ``(R,)`` uint64;
    ``out``: ``(R, m)`` float64. The battles themselves are shuffled (not indices into them), so the replay
    reads one record per step instead of four scattered arrays. The ordering is drawn inside-out: step
    ``t`` swaps a uniform pick from positions ``t..n-1`` into position ``t`` and replays that battle,
    the same permutation as :func:`_shuffle`.

    Four rounds advance together, one battle position at a time, each with its own generator, buffer and
    ratings: a round's updates form one long dependency chain (each waits for the previous exp), and four
    independent chains keep the core busy (about 1.6x the throughput of one round at a time, bit for bit
    the same numbers). A trailing group of fewer than four rounds computes its spare lanes and drops them.
    Runs without the GIL: callers split the rounds over threads.
    """
    rounds, m = out.shape
    n = records.shape[0]
    buf = np.empty((_LANES, n), dtype=np.int64)
    x = np.empty((_LANES, m))
    picks = np.empty(_LANES, dtype=np.int64)
    for r0 in range(0, rounds, _LANES):
        used = min(_LANES, rounds - r0)
        # Spare lanes of a short last group replay round r0 again; their results are dropped.
        a0, a1, a2, a3 = _seed(keys[r0])
        b0, b1, b2, b3 = _seed(keys[r0 + 1 if used > 1 else r0])
        c0, c1, c2, c3 = _seed(keys[r0 + 2 if used > 2 else r0])
        d0, d1, d2, d3 = _seed(keys[r0 + 3 if used > 3 else r0])
        for g in range(_LANES):
            buf[g, :] = records
            for i in range(m):
                x[g, i] = x0
        for t in range(n):
            if t < n - 1:
                bound = _U64(n - t)
                j, a0, a1, a2, a3 = _bounded(bound, a0, a1, a2, a3)
                picks[0] = t + np.int64(j)
                j, b0, b1, b2, b3 = _bounded(bound, b0, b1, b2, b3)
                picks[1] = t + np.int64(j)
                j, c0, c1, c2, c3 = _bounded(bound, c0, c1, c2, c3)
                picks[2] = t + np.int64(j)
                j, d0, d1, d2, d3 = _bounded(bound, d0, d1, d2, d3)
                picks[3] = t + np.int64(j)
            else:
                picks[:] = t
            for g in range(_LANES):
                k = picks[g]
                rec = buf[g, k]
                buf[g, k] = buf[g, t]
                ia = rec & _MODEL_MASK
                ib = (rec >> _B_SHIFT) & _MODEL_MASK
                xa = x[g, ia]
                xb = x[g, ib]
                # k c (s - e_a), with s = (score code) / 2 and e_a = 1 / (1 + exp(x_b - x_a))
                delta = half_kc * (rec >> _SCORE_SHIFT) - kc / (1.0 + math.exp(xb - xa))
                x[g, ia] = xa + delta
                x[g, ib] = xb - delta
        for g in range(used):
            for i in range(m):
                out[r0 + g, i] = x[g, i]


def pack_battles(a_idx: np.ndarray, b_idx: np.ndarray, score_a: np.ndarray) -> np.ndarray:
    """One int64 per battle: ``a | b << 24 | 2 score << 48`` (model indices below 2**24, score 0, 0.5 or 1).

    Returns:
        Shape ``(n,)`` int64.
    """
    a = np.asarray(a_idx, dtype=np.int64)
    b = np.asarray(b_idx, dtype=np.int64)
    code = np.rint(np.asarray(score_a, dtype=np.float64) * 2.0).astype(np.int64)
    if (
        not np.array_equal(code, np.asarray(score_a, dtype=np.float64) * 2.0)
        or code.min(initial=0) < 0
        or code.max(initial=0) > 2
    ):
        raise ValueError("the compiled Elo replay takes scores 0, 0.5 or 1 only")
    if max(a.max(initial=0), b.max(initial=0)) > _MODEL_LIMIT:
        raise ValueError(f"the compiled Elo replay handles at most {_MODEL_LIMIT + 1} models")
    packed: np.ndarray = a | (b << _B_SHIFT) | (code << _SCORE_SHIFT)
    return packed


def kernel_orderings(n_battles: int, keys: np.ndarray) -> np.ndarray:
    """The orderings the kernel replays for ``keys``, materialised (tests only: shape ``(R, n)`` int64).

    Lets the tests check the compiled replay against the numpy replay of exactly the same orderings.
    """
    out = np.empty((keys.shape[0], n_battles), dtype=np.int64)
    for r in range(keys.shape[0]):
        out[r] = np.arange(n_battles)
        _shuffle(out[r], np.uint64(keys[r]))
    return out


def compiled_elo_ratings(
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    score_a: np.ndarray,
    n_models: int,
    keys: np.ndarray,
    *,
    k: float,
    scale: float,
    initial: float,
    threads: int,
) -> np.ndarray:
    """Final Elo ratings of ``R`` orderings, each drawn in the kernel from its key.

    Args:
        a_idx, b_idx: shape ``(n,)`` model indices in ``[0, n_models)`` (checked by the caller).
        score_a: shape ``(n,)``, 1, 0 or 0.5.
        n_models: ``m``.
        keys: shape ``(R,)`` uint64, one per ordering (see :func:`round_keys`).
        k, scale, initial: the Elo constants.
        threads: how many threads replay blocks of rounds (the result does not depend on it).

    Returns:
        Shape ``(R, m)`` float64.
    """
    n = int(np.shape(a_idx)[0])
    if n >= 2**32:
        raise ValueError(f"the compiled Elo replay handles fewer than 2**32 battles, got {n}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    # Natural-log units (x = r ln10 / scale), as in the numpy path: e_a = 1 / (1 + exp(x_b - x_a)).
    c = math.log(10.0) / scale
    records = pack_battles(a_idx, b_idx, score_a)
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    rounds = keys.shape[0]
    out = np.empty((rounds, n_models), dtype=np.float64)
    starts = range(0, rounds, _BLOCK)

    def run(start: int) -> None:
        stop = min(start + _BLOCK, rounds)
        _replay(records, 0.5 * k * c, k * c, initial * c, keys[start:stop], out[start:stop])

    if threads == 1 or rounds <= _BLOCK:
        for start in starts:
            run(start)
    else:
        # The kernel releases the GIL; every round writes only its own row, so threads cannot interfere.
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(run, starts))
    out /= c
    return out

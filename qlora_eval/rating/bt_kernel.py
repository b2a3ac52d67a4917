"""Compiled bootstrap draws for many distinct prompt tables: ``Multinomial(P, multiplicity / P)`` per round.

numpy's multinomial draws one conditional binomial per category (about 0.1-0.4 us each here), which
for 60,000 prompt types and 1,000 rounds is most of a minute. This kernel draws each round exactly from
the same distribution, by Poissonisation: independent counts ``N_k ~ Poisson(multiplicity_k)`` are,
given their total ``T``, ``Multinomial(T, multiplicity / P)``; removing ``T - P`` of those ``T`` items
uniformly at random (when ``T > P``) or adding ``P - T`` independent draws (when ``T < P``) leaves
exactly ``Multinomial(P, multiplicity / P)``. ``|T - P|`` is about ``sqrt(P)``, so the fix-up is cheap.

Each round draws from its own generator keyed by :func:`~qlora_eval.rating.rng_kernel.round_keys`, so the
counts are identical on any number of threads.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from qlora_eval.rating.jit import cached_njit
from qlora_eval.rating.rng_kernel import _U64, _bounded, _seed, _uniform

_BLOCK = 8  # rounds per thread task


@cached_njit()
def _poisson_constants(multiplicity: np.ndarray) -> np.ndarray:
    """Per type, the constants of its Poisson sampler (shape ``(K, 8)``), computed once for all rounds."""
    n_types = multiplicity.shape[0]
    table = np.zeros((n_types, 8))
    for k in range(n_types):
        lam = float(multiplicity[k])
        table[k, 0] = lam
        if lam < 10.0:
            table[k, 1] = math.exp(-lam)
            continue
        b = 0.931 + 2.53 * math.sqrt(lam)
        a = -0.059 + 0.02483 * b
        table[k, 2] = math.log(lam)
        table[k, 3] = b
        table[k, 4] = a
        table[k, 5] = math.log(1.1239 + 1.1328 / (b - 3.4))  # log(1 / alpha)
        table[k, 6] = 0.9277 - 3.6224 / (b - 2.0)  # v_r
    return table


@numba.njit(inline="always")
def _poisson(
    c: np.ndarray, s0: np.uint64, s1: np.uint64, s2: np.uint64, s3: np.uint64
) -> tuple[int, np.uint64, np.uint64, np.uint64, np.uint64]:
    """One Poisson draw with the constants ``c`` of :func:`_poisson_constants`: the multiplication method
    below a mean of 10, Hormann's PTRS (transformed rejection with squeeze, 1993) from 10 on, as numpy does."""
    lam = c[0]
    if lam < 10.0:
        count = 0
        product, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
        while product > c[1]:
            count += 1
            u, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
            product *= u
        return count, s0, s1, s2, s3
    loglam, b, a, log_inv_alpha, vr = c[2], c[3], c[4], c[5], c[6]
    while True:
        u, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
        u -= 0.5
        v, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return int(k), s0, s1, s2, s3
        if k < 0 or (us < 0.013 and v > us):
            continue
        # log(0) = -inf accepts, as in numpy's PTRS (probability 2**-53).
        if v == 0.0 or math.log(v) + log_inv_alpha - math.log(a / (us * us) + b) <= (
            -lam + k * loglam - math.lgamma(k + 1.0)
        ):
            return int(k), s0, s1, s2, s3


@cached_njit(nogil=True)
def _draw(multiplicity: np.ndarray, keys: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out[r]`` (shape ``(R, K)`` int64) with one ``Multinomial(P, multiplicity / P)`` draw per key."""
    rounds, n_types = out.shape
    total_prompts = 0
    for k in range(n_types):
        total_prompts += multiplicity[k]
    cumulative = np.cumsum(multiplicity)
    constants = _poisson_constants(multiplicity)
    tree = np.zeros(n_types + 1, dtype=np.int64)  # Fenwick tree over the current counts (for removals)
    for r in range(rounds):
        s0, s1, s2, s3 = _seed(keys[r])
        row = out[r]
        total = 0
        for k in range(n_types):
            c, s0, s1, s2, s3 = _poisson(constants[k], s0, s1, s2, s3)
            row[k] = c
            total += c
        while total < total_prompts:
            # One more prompt drawn uniformly: its type has probability multiplicity / P.
            u, s0, s1, s2, s3 = _bounded(_U64(total_prompts), s0, s1, s2, s3)
            drawn = np.searchsorted(cumulative, np.int64(u), side="right")
            row[drawn] += 1
            total += 1
        if total > total_prompts:
            for i in range(n_types + 1):
                tree[i] = 0
            for k in range(n_types):
                i = k + 1
                while i <= n_types:
                    tree[i] += row[k]
                    i += i & (-i)
            top = 1
            while top * 2 <= n_types:
                top *= 2
            while total > total_prompts:
                # Remove one of the ``total`` items uniformly: find the type holding item number u.
                u, s0, s1, s2, s3 = _bounded(_U64(total), s0, s1, s2, s3)
                remaining = np.int64(u)
                pos = 0
                step = top
                while step > 0:
                    nxt = pos + step
                    if nxt <= n_types and tree[nxt] <= remaining:
                        pos = nxt
                        remaining -= tree[nxt]
                    step //= 2
                row[pos] -= 1  # pos is the 0-based type (1-based tree index pos + 1)
                i = pos + 1
                while i <= n_types:
                    tree[i] -= 1
                    i += i & (-i)
                total -= 1


def compiled_type_counts(multiplicity: np.ndarray, keys: np.ndarray, threads: int) -> np.ndarray:
    """``Multinomial(P, multiplicity / P)`` draws, one per key (``P = multiplicity.sum()``).

    Args:
        multiplicity: shape ``(K,)`` positive integers.
        keys: shape ``(R,)`` uint64 round keys.
        threads: threads drawing blocks of rounds (the result does not depend on it).

    Returns:
        Shape ``(R, K)`` int64; every row sums to ``P``.
    """
    mult = np.ascontiguousarray(multiplicity, dtype=np.int64)
    if mult.min(initial=1) < 1 or int(mult.sum()) >= 2**32:
        raise ValueError("multiplicities must be positive and sum to fewer than 2**32 prompts")
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    rounds = keys.shape[0]
    out = np.empty((rounds, mult.shape[0]), dtype=np.int64)
    starts = range(0, rounds, _BLOCK)

    def run(start: int) -> None:
        stop = min(start + _BLOCK, rounds)
        _draw(mult, keys[start:stop], out[start:stop])

    if threads == 1 or rounds <= _BLOCK:
        for start in starts:
            run(start)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(run, starts))
    return out


@cached_njit(nogil=True)
def _chord_half_win(
    lo: np.ndarray,
    hi: np.ndarray,
    w_lo: np.ndarray,
    total: np.ndarray,
    start: np.ndarray,
    h_inv: np.ndarray,
    tol: float,
    max_iter: int,
    out: np.ndarray,
    stalled: np.ndarray,
) -> None:
    """Chord-Newton fits of HALF_WIN rounds on pair arrays (see ``bt_bootstrap._chord_fit``), one round at a time.

    Shapes: ``lo``, ``hi``: ``(Q,)``; ``w_lo`` (wins of ``lo`` with ties halved), ``total`` (games):
    ``(B, Q)``; ``start``: ``(m,)``; ``h_inv``: ``(m, m)``; ``out``: ``(B, m)``; ``stalled``: ``(B,)`` bool,
    set for rounds whose steps stopped shrinking or that hit ``max_iter`` (the caller refits them).
    """
    rounds, n_pairs = w_lo.shape
    m = start.shape[0]
    grad = np.empty(m)
    step = np.empty(m)
    for r in range(rounds):
        beta = out[r]
        for i in range(m):
            beta[i] = start[i]
        previous = np.inf
        converged = False
        for _ in range(max_iter):
            penalty = 0.0  # (sum beta)^2 / 2 pins the translation: its gradient is sum beta
            for i in range(m):
                penalty += beta[i]
            for i in range(m):
                grad[i] = penalty
            for q in range(n_pairs):
                games = total[r, q]
                if games == 0.0:
                    continue
                i, j = lo[q], hi[q]
                residual = games / (1.0 + math.exp(beta[j] - beta[i])) - w_lo[r, q]
                grad[i] += residual
                grad[j] -= residual
            size = 0.0
            for i in range(m):
                acc = 0.0
                for j in range(m):
                    acc -= h_inv[i, j] * grad[j]
                step[i] = acc
                size = max(size, abs(acc))
            if size >= previous:
                break
            for i in range(m):
                beta[i] += step[i]
            previous = size
            if size < tol:
                converged = True
                break
        if not converged:
            stalled[r] = True


def compiled_chord_half_win(
    lo: np.ndarray,
    hi: np.ndarray,
    w_lo: np.ndarray,
    total: np.ndarray,
    start: np.ndarray,
    h_inv: np.ndarray,
    *,
    tol: float,
    max_iter: int,
    threads: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Run :func:`_chord_half_win` over blocks of rounds on ``threads`` threads.

    Returns:
        ``(beta, stalled)``: shapes ``(B, m)`` and ``(B,)`` bool.
    """
    rounds = w_lo.shape[0]
    out = np.empty((rounds, start.shape[0]))
    stalled = np.zeros(rounds, dtype=np.bool_)
    args = (np.ascontiguousarray(lo, dtype=np.int64), np.ascontiguousarray(hi, dtype=np.int64))
    w = np.ascontiguousarray(w_lo, dtype=np.float64)
    n = np.ascontiguousarray(total, dtype=np.float64)
    h = np.ascontiguousarray(h_inv, dtype=np.float64)
    s = np.ascontiguousarray(start, dtype=np.float64)
    block = max(1, -(-rounds // threads))

    def run(first: int) -> None:
        last = min(first + block, rounds)
        _chord_half_win(*args, w[first:last], n[first:last], s, h, tol, max_iter, out[first:last], stalled[first:last])

    if threads == 1 or rounds <= 1:
        run(0)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(run, range(0, rounds, block)))
    return out, stalled

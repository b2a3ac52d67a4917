"""Counter-free random numbers for the compiled kernels: one xoshiro256** generator per bootstrap round.

Each round's generator is seeded (through SplitMix64) from a 64-bit key drawn from the caller's
``numpy.random.Generator`` (:func:`round_keys`), so a round's draws depend only on its key, never on the
thread that runs it: the kernels give identical results on any number of threads.
"""

from __future__ import annotations

import numba
import numpy as np

_U64 = np.uint64
_MASK32 = np.uint64(0xFFFFFFFF)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@numba.njit(inline="always")
def _rotl(x: np.uint64, k: int) -> np.uint64:
    return (x << _U64(k)) | (x >> _U64(64 - k))


@numba.njit(inline="always")
def _splitmix64(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    """One SplitMix64 step: (new state, output). Used only to expand a round's key into xoshiro state."""
    state = state + _U64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return state, z ^ (z >> _U64(31))


@numba.njit(inline="always")
def _seed(key: np.uint64) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64]:
    s, x0 = _splitmix64(key)
    s, x1 = _splitmix64(s)
    s, x2 = _splitmix64(s)
    s, x3 = _splitmix64(s)
    return x0, x1, x2, x3


@numba.njit(inline="always")
def _next(
    s0: np.uint64, s1: np.uint64, s2: np.uint64, s3: np.uint64
) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64, np.uint64]:
    """xoshiro256**: (output, new state)."""
    out = _rotl(s1 * _U64(5), 7) * _U64(9)
    t = s1 << _U64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    return out, s0, s1, s2, s3


@numba.njit(inline="always")
def _bounded(
    bound: np.uint64, s0: np.uint64, s1: np.uint64, s2: np.uint64, s3: np.uint64
) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64, np.uint64]:
    """A uniform integer in ``[0, bound)`` for ``1 <= bound < 2**32`` (Lemire's unbiased multiply-shift)."""
    x, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
    product = (x >> _U64(32)) * bound
    low = product & _MASK32
    if low < bound:
        threshold = (_U64(0x100000000) - bound) % bound
        while low < threshold:
            x, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
            product = (x >> _U64(32)) * bound
            low = product & _MASK32
    return product >> _U64(32), s0, s1, s2, s3


@numba.njit(inline="always")
def _uniform(
    s0: np.uint64, s1: np.uint64, s2: np.uint64, s3: np.uint64
) -> tuple[float, np.uint64, np.uint64, np.uint64, np.uint64]:
    """A uniform double in ``[0, 1)`` (the top 53 bits of one output)."""
    x, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
    return float(x >> _U64(11)) * _TO_UNIT, s0, s1, s2, s3


def round_keys(rounds: int, rng: np.random.Generator) -> np.ndarray:
    """One 64-bit key per round, drawn from ``rng`` (all of a run's randomness comes from here).

    Successive calls continue ``rng``'s stream, so keys drawn in chunks equal keys drawn at once.

    Returns:
        Shape ``(rounds,)`` uint64.
    """
    keys: np.ndarray = rng.integers(0, np.iinfo(np.uint64).max, size=rounds, dtype=np.uint64, endpoint=True)
    return keys

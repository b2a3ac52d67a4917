"""Agreement statistics of human votes (pure functions, no I/O)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from typing import TypeVar

import numpy as np

T = TypeVar("T", bound=Hashable)


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa of categorical ratings.

    Args:
        counts: shape ``(n_subjects, n_categories)``; ``counts[i, j]`` is how many raters put subject ``i``
            in category ``j``. Every subject needs at least two ratings. Subjects may have different numbers
            of ratings: each subject's agreement ``P_i`` then uses its own count and the category shares are
            pooled over all ratings, which is exactly Fleiss (1971) when every subject has the same count.

    Returns:
        kappa = (P_bar - P_e) / (1 - P_e), or None when every rating falls in one category
        (chance agreement is 1 and kappa is undefined).

    Raises:
        ValueError: not a 2-D array of non-negative integers, no subjects, or a subject with fewer than two ratings.
    """
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[0] == 0 or counts.shape[1] == 0:
        raise ValueError(f"counts must have shape (n_subjects >= 1, n_categories >= 1), got {counts.shape}")
    if np.any(counts < 0) or not np.all(np.equal(np.mod(counts, 1), 0)):
        raise ValueError("counts must be non-negative integers")
    n_i = counts.sum(axis=1).astype(float)
    if np.any(n_i < 2):
        raise ValueError("every subject needs at least two ratings for Fleiss' kappa")
    p_i = ((counts.astype(float) ** 2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_bar = float(p_i.mean())
    p_j = counts.sum(axis=0) / n_i.sum()
    p_e = float((p_j**2).sum())
    if np.isclose(p_e, 1.0):
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def plurality(labels: Iterable[T]) -> T | None:
    """The label given strictly more often than any other; None for no labels or a tied top count."""
    ranked = Counter(labels).most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]

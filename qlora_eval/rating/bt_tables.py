"""Sparse per-prompt count tables for the Bradley-Terry prompt bootstrap.

The dense tables (:func:`qlora_eval.rating.bradley_terry.prompt_count_tables`, shape ``(P, m, m)``) cost
``P m^2`` memory: 298 GiB for an Arena file of a million prompts and 200 models. A prompt only touches
the pairs it has battles on, so here every prompt stores one *entry* per pair it has: the model pair
``lo < hi``, ``lo``'s decisive wins over ``hi``, ``hi``'s over ``lo`` and their ties.

Prompts whose entries are identical are then merged into one *type* with a multiplicity (on Arena data,
one battle per prompt, a type is just a pair and an outcome: about ``3 m (m - 1) / 2`` types, however
many battles). Drawing ``P`` prompts with replacement and counting how often each type comes up is a
``Multinomial(P, multiplicity / P)`` draw over the types, the same distribution as the prompt bootstrap;
when no two prompts are identical the types are the prompts, in prompt order, and the draw is exactly
:func:`~qlora_eval.rating.bradley_terry.bootstrap_prompt_counts`.

Shapes: ``E`` entries, ``K`` types, ``Q`` distinct model pairs, ``B`` bootstrap rounds in a chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class PromptTypes:
    """Distinct per-prompt tables, stored as entries (CSR-like: entries of type ``k`` are contiguous).

    Attributes:
        n_models: ``m``.
        n_prompts: ``P``, prompts before merging.
        pair_lo: shape ``(Q,)`` intp, the lower model index of each distinct pair.
        pair_hi: shape ``(Q,)`` intp, the higher model index.
        entry_type: shape ``(E,)`` intp, the type each entry belongs to (non-decreasing).
        entry_pair: shape ``(E,)`` intp, index into ``pair_lo``/``pair_hi``.
        wins_lo: shape ``(E,)`` float64, decisive wins of ``lo`` over ``hi`` on one prompt of this type.
        wins_hi: shape ``(E,)`` float64, decisive wins of ``hi`` over ``lo``.
        ties: shape ``(E,)`` float64, ties between them.
        type_ptr: shape ``(K + 1,)`` intp, entries of type ``k`` are ``type_ptr[k]:type_ptr[k + 1]``.
        multiplicity: shape ``(K,)`` int64, how many prompts have this table (sums to ``P``).
    """

    n_models: int
    n_prompts: int
    pair_lo: np.ndarray
    pair_hi: np.ndarray
    entry_type: np.ndarray
    entry_pair: np.ndarray
    wins_lo: np.ndarray
    wins_hi: np.ndarray
    ties: np.ndarray
    type_ptr: np.ndarray
    multiplicity: np.ndarray

    @property
    def n_types(self) -> int:
        """Number of distinct prompt tables ``K``."""
        return int(self.multiplicity.shape[0])

    def round_tables(self, type_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-pair totals of bootstrap rounds that drew each type ``type_counts[b, k]`` times.

        Args:
            type_counts: shape ``(B, K)``, draws per type per round.

        Returns:
            ``(wins_lo, wins_hi, ties)``, each of shape ``(B, Q)`` float64 (exact: sums of integers).
        """
        rounds = type_counts.shape[0]
        n_pairs = self.pair_lo.shape[0]
        weight = np.asarray(type_counts, dtype=np.float64)[:, self.entry_type]  # (B, E)
        # One bincount for the whole chunk: row b's entries land in bins b * Q + pair.
        bins = (np.arange(rounds, dtype=np.intp)[:, None] * n_pairs + self.entry_pair[None, :]).ravel()
        out = []
        for value in (self.wins_lo, self.wins_hi, self.ties):
            summed = np.bincount(bins, weights=(weight * value[None, :]).ravel(), minlength=rounds * n_pairs)
            out.append(summed.reshape(rounds, n_pairs))
        return out[0], out[1], out[2]

    def dense(self, wins_lo: np.ndarray, wins_hi: np.ndarray, ties: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-pair totals of shape ``(B, Q)`` as dense ``(B, m, m)`` win and (symmetric) tie tables."""
        rounds = wins_lo.shape[0]
        m = self.n_models
        wins = np.zeros((rounds, m, m))
        tie_table = np.zeros((rounds, m, m))
        wins[:, self.pair_lo, self.pair_hi] = wins_lo
        wins[:, self.pair_hi, self.pair_lo] = wins_hi
        tie_table[:, self.pair_lo, self.pair_hi] = ties
        tie_table[:, self.pair_hi, self.pair_lo] = ties
        return wins, tie_table


def prompt_types(
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    score_a: np.ndarray,
    prompt_idx: np.ndarray,
    n_prompts: int,
    n_models: int,
) -> PromptTypes:
    """Build the sparse per-prompt tables and merge identical prompts.

    Args:
        a_idx, b_idx, score_a: shape ``(n,)`` battle arrays (score 1, 0 or 0.5).
        prompt_idx: shape ``(n,)``, the prompt of each battle, in ``[0, n_prompts)``; every prompt has a battle.
        n_prompts: ``P``.
        n_models: ``m``.

    Returns:
        The :class:`PromptTypes`; types are ordered by their first prompt.
    """
    a = np.asarray(a_idx, dtype=np.int64)
    b = np.asarray(b_idx, dtype=np.int64)
    s = np.asarray(score_a, dtype=np.float64)
    g = np.asarray(prompt_idx, dtype=np.int64)
    lo = np.minimum(a, b)
    hi = np.maximum(a, b)
    winner = np.where(s == 1.0, a, np.where(s == 0.0, b, -1))
    # Entries: one per (prompt, pair), sorted by prompt then pair.
    pair_key = lo * n_models + hi
    if n_prompts * n_models * n_models < 2**62:
        order = np.argsort(g * (n_models * n_models) + pair_key)  # one int64 sort key: much faster than lexsort
    else:
        order = np.lexsort((pair_key, g))
    g_sorted, pair_sorted = g[order], pair_key[order]
    new_entry = np.r_[True, (g_sorted[1:] != g_sorted[:-1]) | (pair_sorted[1:] != pair_sorted[:-1])]
    starts = np.flatnonzero(new_entry)
    entry_of_battle = np.empty(order.shape[0], dtype=np.intp)
    entry_of_battle[order] = np.cumsum(new_entry) - 1
    n_entries = starts.shape[0]
    wins_lo = np.bincount(entry_of_battle, weights=(winner == lo).astype(np.float64), minlength=n_entries)
    wins_hi = np.bincount(entry_of_battle, weights=(winner == hi).astype(np.float64), minlength=n_entries)
    ties = np.bincount(entry_of_battle, weights=(winner == -1).astype(np.float64), minlength=n_entries)
    entry_prompt = g_sorted[starts]
    entry_pair_key = pair_sorted[starts]
    pair_keys, entry_pair = np.unique(entry_pair_key, return_inverse=True)
    entry_pair = entry_pair.reshape(-1).astype(np.intp)
    entry_code = _entry_codes(entry_pair, wins_lo, wins_hi, ties)
    entries_per_prompt = np.bincount(entry_prompt, minlength=n_prompts)
    if (entries_per_prompt == 0).any():
        raise ValueError("every prompt index in [0, n_prompts) must have at least one battle")
    prompt_start = np.r_[0, np.cumsum(entries_per_prompt)[:-1]]
    type_of_prompt = np.empty(n_prompts, dtype=np.int64)
    n_types = 0
    first_prompt_parts = []
    for width in np.unique(entries_per_prompt):
        prompts = np.flatnonzero(entries_per_prompt == width)
        # A prompt is the sequence of its entry codes; prompts with the same number of entries are compared
        # as fixed-width rows (one entry: plain 1-d unique, the Arena case).
        block = entry_code[prompt_start[prompts][:, None] + np.arange(width)[None, :]]
        if width == 1:
            _, first, inverse = np.unique(block[:, 0], return_index=True, return_inverse=True)
        else:
            _, first, inverse = np.unique(block, axis=0, return_index=True, return_inverse=True)
        type_of_prompt[prompts] = n_types + inverse.reshape(-1)
        first_prompt_parts.append(prompts[first])
        n_types += first.shape[0]
    # Renumber types by their first prompt, so that all-distinct prompts keep the prompt order.
    first_prompt = np.concatenate(first_prompt_parts)
    rank = np.empty(n_types, dtype=np.int64)
    rank[np.argsort(first_prompt, kind="stable")] = np.arange(n_types)
    type_of_prompt = rank[type_of_prompt]
    multiplicity = np.bincount(type_of_prompt, minlength=n_types).astype(np.int64)
    representative = np.sort(first_prompt)  # the first prompt of type k, for k = 0..K-1
    counts = entries_per_prompt[representative]
    type_ptr = np.r_[0, np.cumsum(counts)].astype(np.intp)
    entry_index = (np.repeat(prompt_start[representative] - type_ptr[:-1], counts) + np.arange(type_ptr[-1])).astype(
        np.intp
    )
    return PromptTypes(
        n_models=n_models,
        n_prompts=n_prompts,
        pair_lo=(pair_keys // n_models).astype(np.intp),
        pair_hi=(pair_keys % n_models).astype(np.intp),
        entry_type=np.repeat(np.arange(n_types, dtype=np.intp), counts),
        entry_pair=entry_pair[entry_index],
        wins_lo=wins_lo[entry_index],
        wins_hi=wins_hi[entry_index],
        ties=ties[entry_index],
        type_ptr=type_ptr,
        multiplicity=multiplicity,
    )


def _entry_codes(pair: np.ndarray, wins_lo: np.ndarray, wins_hi: np.ndarray, ties: np.ndarray) -> np.ndarray:
    """One int64 per entry, equal exactly when (pair, wins_lo, wins_hi, ties) are equal; shape ``(E,)``."""
    columns = [pair.astype(np.int64), wins_lo.astype(np.int64), wins_hi.astype(np.int64), ties.astype(np.int64)]
    base = int(max(c.max(initial=0) for c in columns)) + 1
    if base**4 < 2**62:
        code = ((columns[0] * base + columns[1]) * base + columns[2]) * base + columns[3]
        return code
    _, inverse = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
    out: np.ndarray = inverse.reshape(-1).astype(np.int64)
    return out


# Up to this many distinct prompt tables the draws are numpy's multinomial on the caller's generator (the
# draws of bootstrap_prompt_counts, so paper-sized data keeps its numbers); beyond it numpy's per-category
# binomials dominate the run and the compiled sampler (bt_kernel) draws from the same distribution.
NUMPY_DRAW_MAX_TYPES = 4096


def draw_type_counts(types: PromptTypes, rounds: int, rng: np.random.Generator, *, threads: int = 1) -> np.ndarray:
    """How often each type is drawn in each of ``rounds`` rounds of ``P`` prompts drawn with replacement.

    That is ``Multinomial(P, multiplicity / P)`` per round. Up to :data:`NUMPY_DRAW_MAX_TYPES` types it is
    numpy's multinomial on ``rng``; with more, the compiled sampler of :mod:`.bt_kernel` keyed by ``rng``
    (exactly the same distribution, different draws). Successive calls continue ``rng``'s stream either
    way, so drawing in chunks gives the same numbers as one call.

    Args:
        types: the prompt types.
        rounds: bootstrap rounds ``B``.
        rng: the source of randomness.
        threads: threads for the compiled sampler (its result does not depend on it).

    Returns:
        Shape ``(rounds, K)`` int64; every row sums to ``P``.
    """
    if types.n_types <= NUMPY_DRAW_MAX_TYPES:
        counts: np.ndarray = rng.multinomial(types.n_prompts, types.multiplicity / types.n_prompts, size=rounds)
        return counts
    # numba is imported only here: paper-sized Bradley-Terry runs never pay for it.
    from qlora_eval.rating.bt_kernel import compiled_type_counts
    from qlora_eval.rating.rng_kernel import round_keys

    return compiled_type_counts(types.multiplicity, round_keys(rounds, rng), threads)

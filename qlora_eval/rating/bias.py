"""Judge bias statistics: position bias, order-swap consistency, and preference for longer answers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from qlora_eval.rating.battles import VERDICT_A, VERDICT_B, BattleArrays

_SWAP_CODE = np.array([VERDICT_B, VERDICT_A, 2, 3], dtype=np.int8)  # A<->B; TIE and BOTH_BAD stay


def _wilson(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float] | None:
    """95% Wilson score interval of a binomial proportion (well-behaved near 0 and 1); None without trials."""
    if trials == 0:
        return None
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class PositionBias:
    """How much the order of presentation sways a judge.

    Attributes:
        decisive: valid verdicts that named a winner (A or B).
        first_wins: of those, how many chose the answer shown first.
        first_win_rate: ``first_wins / decisive`` (0.5 = no position bias); None without decisive verdicts.
        first_win_ci: 95% Wilson interval of ``first_win_rate``; None without decisive verdicts.
        swap_pairs: pairs of valid verdicts on the same (prompt, model pair, judge) in opposite orders
            (the k-th verdict in one order is paired with the k-th in the other).
        swap_consistent: pairs whose verdict survives the swap (same winner, or the same TIE/BOTH_BAD).
        consistency: ``swap_consistent / swap_pairs``; None when nothing was judged in both orders.
    """

    decisive: int
    first_wins: int
    first_win_rate: float | None
    first_win_ci: tuple[float, float] | None
    swap_pairs: int
    swap_consistent: int
    consistency: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "decisive": self.decisive,
            "first_wins": self.first_wins,
            "first_win_rate": self.first_win_rate,
            "first_win_ci": list(self.first_win_ci) if self.first_win_ci is not None else None,
            "swap_pairs": self.swap_pairs,
            "swap_consistent": self.swap_consistent,
            "consistency": self.consistency,
        }


def swap_pairs(arrays: BattleArrays) -> tuple[np.ndarray, np.ndarray]:
    """The order-swap pairs: on each (prompt, unordered model pair, judge), the k-th verdict given in one
    presentation order is paired with the k-th given in the other (input order).

    Vectorised (sorts instead of a dict of lists: a million Arena battles take a fraction of a second).

    Returns:
        ``(judge_idx, consistent)``, each of shape ``(pairs,)``: the judge of each pair, and whether its
        verdict survives the swap (same winner, or the same TIE/BOTH_BAD).
    """
    a, b = arrays.a_idx, arrays.b_idx
    low, high = np.minimum(a, b), np.maximum(a, b)
    forward = a < b
    # The verdict as seen in the forward orientation, so both orders can be compared directly.
    as_forward = np.where(forward, arrays.verdict_code, _SWAP_CODE[arrays.verdict_code])
    columns = (arrays.prompt_idx, low, high, arrays.judge_idx)
    sizes = (len(arrays.prompts), arrays.n_models, arrays.n_models, max(1, len(arrays.judges)))
    if math.prod(sizes) < 2**62:
        key = ((columns[0] * sizes[1] + columns[1]) * sizes[2] + columns[2]) * sizes[3] + columns[3]
        _, group = np.unique(key, return_inverse=True)
    else:
        _, group = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
    group = group.reshape(-1).astype(np.int64)
    # Rank of each verdict within its (group, orientation), in input order (a stable sort keeps it).
    side = group * 2 + forward
    order = np.argsort(side, kind="stable")
    sorted_side = side[order]
    n = side.shape[0]
    starts = np.flatnonzero(np.r_[True, sorted_side[1:] != sorted_side[:-1]]) if n else np.zeros(0, dtype=np.intp)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    pair_id = group * max(n, 1) + rank
    _, first, second = np.intersect1d(pair_id[forward], pair_id[~forward], assume_unique=True, return_indices=True)
    consistent = as_forward[forward][first] == as_forward[~forward][second]
    return arrays.judge_idx[forward][first], consistent


def _bias(decisive: int, first_wins: int, pairs: int, consistent: int) -> PositionBias:
    return PositionBias(
        decisive=decisive,
        first_wins=first_wins,
        first_win_rate=first_wins / decisive if decisive else None,
        first_win_ci=_wilson(first_wins, decisive),
        swap_pairs=pairs,
        swap_consistent=consistent,
        consistency=consistent / pairs if pairs else None,
    )


def _per_judge(arrays: BattleArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per judge (each shape ``(J,)``): decisive verdicts, first-shown wins, swap pairs, consistent pairs."""
    judges = max(1, len(arrays.judges))
    codes = arrays.verdict_code
    decisive = np.bincount(arrays.judge_idx[(codes == VERDICT_A) | (codes == VERDICT_B)], minlength=judges)
    first_wins = np.bincount(arrays.judge_idx[codes == VERDICT_A], minlength=judges)
    pair_judge, consistent = swap_pairs(arrays)
    pairs = np.bincount(pair_judge, minlength=judges)
    kept = np.bincount(pair_judge[consistent], minlength=judges)
    return decisive, first_wins, pairs, kept


def position_bias(arrays: BattleArrays) -> PositionBias:
    """Position bias and swap consistency over all valid verdicts (all judges together; a swap pair is
    always two verdicts of the same judge)."""
    decisive, first_wins, pairs, kept = _per_judge(arrays)
    return _bias(int(decisive.sum()), int(first_wins.sum()), int(pairs.sum()), int(kept.sum()))


def position_bias_by_judge(arrays: BattleArrays) -> dict[str, PositionBias]:
    """Position bias and swap consistency of each judge separately, keyed by judge id."""
    decisive, first_wins, pairs, kept = _per_judge(arrays)
    return {
        judge: _bias(int(decisive[j]), int(first_wins[j]), int(pairs[j]), int(kept[j]))
        for j, judge in enumerate(arrays.judges)
    }


@dataclass(frozen=True)
class LengthPreference:
    """Whether the judge prefers the longer answer.

    Attributes:
        decisive: decisive verdicts (A or B) between answers of different lengths.
        longer_wins: of those, how many chose the longer answer.
        longer_win_rate: ``longer_wins / decisive``; None without such verdicts.
        longer_win_ci: 95% Wilson interval of ``longer_win_rate``; None without such verdicts.
    """

    decisive: int
    longer_wins: int
    longer_win_rate: float | None
    longer_win_ci: tuple[float, float] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "decisive": self.decisive,
            "longer_wins": self.longer_wins,
            "longer_win_rate": self.longer_win_rate,
            "longer_win_ci": list(self.longer_win_ci) if self.longer_win_ci is not None else None,
        }


def length_preference(length_a: np.ndarray, length_b: np.ndarray, verdict_code: np.ndarray) -> LengthPreference:
    """How often the longer answer wins a decisive verdict.

    Args:
        length_a: shape ``(n,)``, length (characters or tokens, the caller's choice) of the first-shown answer.
        length_b: shape ``(n,)``, length of the second-shown answer.
        verdict_code: shape ``(n,)``, ``BattleArrays.verdict_code`` of the same battles.

    Returns:
        The :class:`LengthPreference`.
    """
    la = np.asarray(length_a, dtype=np.float64)
    lb = np.asarray(length_b, dtype=np.float64)
    codes = np.asarray(verdict_code)
    if not la.shape == lb.shape == codes.shape:
        raise ValueError(
            f"length_a, length_b and verdict_code must share shape (n,), got {la.shape}, {lb.shape}, {codes.shape}"
        )
    usable = np.isin(codes, (VERDICT_A, VERDICT_B)) & (la != lb)
    longer_wins = int((usable & (((codes == VERDICT_A) & (la > lb)) | ((codes == VERDICT_B) & (lb > la)))).sum())
    decisive = int(usable.sum())
    return LengthPreference(
        decisive=decisive,
        longer_wins=longer_wins,
        longer_win_rate=longer_wins / decisive if decisive else None,
        longer_win_ci=_wilson(longer_wins, decisive),
    )

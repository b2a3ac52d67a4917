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


def _bias_of(arrays: BattleArrays, mask: np.ndarray) -> PositionBias:
    codes = arrays.verdict_code[mask]
    decisive = int(np.isin(codes, (VERDICT_A, VERDICT_B)).sum())
    first_wins = int((codes == VERDICT_A).sum())
    # Group by (prompt, unordered pair, judge); the orientation says which order the pair was shown in.
    a, b = arrays.a_idx[mask], arrays.b_idx[mask]
    low, high = np.minimum(a, b), np.maximum(a, b)
    forward = a < b
    # The verdict as seen in the forward orientation, so both orders can be compared directly.
    as_forward = np.where(forward, codes, _SWAP_CODE[codes])
    groups: dict[tuple[int, int, int, int], tuple[list[int], list[int]]] = {}
    keys = zip(
        arrays.prompt_idx[mask].tolist(), low.tolist(), high.tolist(), arrays.judge_idx[mask].tolist(), strict=True
    )
    for key, is_forward, verdict in zip(keys, forward.tolist(), as_forward.tolist(), strict=True):
        fwd, swp = groups.setdefault(key, ([], []))
        (fwd if is_forward else swp).append(verdict)
    pairs = 0
    consistent = 0
    for fwd, swp in groups.values():
        for v_fwd, v_swp in zip(fwd, swp, strict=False):
            pairs += 1
            consistent += int(v_fwd == v_swp)
    return PositionBias(
        decisive=decisive,
        first_wins=first_wins,
        first_win_rate=first_wins / decisive if decisive else None,
        first_win_ci=_wilson(first_wins, decisive),
        swap_pairs=pairs,
        swap_consistent=consistent,
        consistency=consistent / pairs if pairs else None,
    )


def position_bias(arrays: BattleArrays) -> PositionBias:
    """Position bias and swap consistency over all valid verdicts (all judges together)."""
    return _bias_of(arrays, np.ones(arrays.n_battles, dtype=bool))


def position_bias_by_judge(arrays: BattleArrays) -> dict[str, PositionBias]:
    """Position bias and swap consistency of each judge separately, keyed by judge id."""
    return {judge: _bias_of(arrays, arrays.judge_idx == j) for j, judge in enumerate(arrays.judges)}


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

"""Judge diagnostics that need more than the battles: answer lengths and agreement between judges.

Position bias, swap consistency and length preference are computed by the rating engine
(``qlora_eval.rating.bias``, through ``rank_battles(..., answer_lengths=...)``); this module supplies the answer
lengths from stored answers, and compares two judges (two models, or a model and human raters ``human:*``) that
rated the same battles: agreement with and without ties, Cohen's kappa, and the rank correlation (Kendall tau,
Spearman rho, from ``scipy.stats``) of the ratings each judge's verdicts give.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qlora_eval.types import Judgment, Verdict

# Outcome labels of a battle, seen from the alphabetical pair (so either presentation order compares).
_FIRST, _SECOND, _TIE = 0, 1, 2
_LABELS = ("first model wins", "second model wins", "tie")


def answer_lengths(
    judgments: Sequence[Judgment], length_of: Callable[[str], int | None]
) -> tuple[list[float], list[float]] | None:
    """Lengths (characters) of the two answers of each judgment, aligned with ``judgments``.

    Args:
        judgments: the judgments (their answer keys name the answers).
        length_of: answer key -> length of its text, None when the answer is not stored.

    Returns:
        ``(length_a, length_b)``, or None when any judgment lacks a stored answer (imports without answers):
        a partial length statistic would silently describe a subset.
    """
    first: list[float] = []
    second: list[float] = []
    for j in judgments:
        if j.answer_a_key is None or j.answer_b_key is None:
            return None
        la, lb = length_of(j.answer_a_key), length_of(j.answer_b_key)
        if la is None or lb is None:
            return None
        first.append(float(la))
        second.append(float(lb))
    return first, second


@dataclass(frozen=True)
class JudgeAgreement:
    """How two judges agree on the battles both rated.

    Attributes:
        judge_1, judge_2: the judges (alphabetical).
        shared: battles both rated with a valid verdict (same prompt, same two models, same order where both
            judged that order, else the other order).
        agreement: fraction of shared battles with the same outcome (win, loss or tie); None if none shared.
        agreement_without_ties: the same over battles where both named a winner; None if there are none.
        decisive_shared: how many battles that is.
        cohen_kappa: Cohen's kappa over the three outcomes; None when chance agreement is 1 (undefined).
        rated_models: models both judges' ratings cover.
        kendall_tau, spearman_rho: rank correlation of the two judges' ratings over ``rated_models``;
            None with fewer than 3 models (or a constant rating), where it says nothing.
        confusion: 3x3 counts, rows judge_1's outcome, columns judge_2's (first wins, second wins, tie).
    """

    judge_1: str
    judge_2: str
    shared: int
    agreement: float | None
    agreement_without_ties: float | None
    decisive_shared: int
    cohen_kappa: float | None
    rated_models: int
    kendall_tau: float | None
    spearman_rho: float | None
    confusion: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge_1": self.judge_1,
            "judge_2": self.judge_2,
            "shared": self.shared,
            "agreement": self.agreement,
            "agreement_without_ties": self.agreement_without_ties,
            "decisive_shared": self.decisive_shared,
            "cohen_kappa": self.cohen_kappa,
            "rated_models": self.rated_models,
            "kendall_tau": self.kendall_tau,
            "spearman_rho": self.spearman_rho,
            "confusion": {"labels": list(_LABELS), "counts": [list(r) for r in self.confusion]},
        }


def cohen_kappa(confusion: np.ndarray) -> float | None:
    """Cohen's kappa of a square confusion matrix of two raters' labels.

    Returns:
        ``(p_o - p_e) / (1 - p_e)``; None when there are no items or chance agreement ``p_e`` is 1.
    """
    table = np.asarray(confusion, dtype=np.float64)
    total = table.sum()
    if total == 0:
        return None
    p_o = np.trace(table) / total
    p_e = float((table.sum(axis=0) * table.sum(axis=1)).sum() / total**2)
    if math.isclose(p_e, 1.0):
        return None
    return float((p_o - p_e) / (1.0 - p_e))


def _outcome(j: Judgment) -> int:
    """The verdict as seen from the alphabetical pair; BOTH_BAD counts as a tie (nobody won)."""
    if j.verdict in (Verdict.TIE, Verdict.BOTH_BAD):
        return _TIE
    first_shown_won = j.verdict is Verdict.A
    winner = j.model_a if first_shown_won else j.model_b
    return _FIRST if winner == min(j.model_a, j.model_b) else _SECOND


def _by_battle(judgments: Sequence[Judgment]) -> dict[tuple[str, str, str, str], list[int]]:
    table: dict[tuple[str, str, str, str], list[int]] = {}
    for j in judgments:
        if j.verdict is Verdict.INVALID:
            continue
        table.setdefault((j.prompt_set, j.prompt_id, j.model_a, j.model_b), []).append(_outcome(j))
    return table


def judge_agreement(
    judgments: Sequence[Judgment], ratings: Mapping[str, Mapping[str, float]] | None = None
) -> list[JudgeAgreement]:
    """Agreement of every pair of judges that rated common battles.

    Args:
        judgments: judgments of several judges (INVALID verdicts are left out).
        ratings: judge -> (model -> rating) from ranking each judge's verdicts alone, for the rank correlation;
            None to skip it.

    Returns:
        One :class:`JudgeAgreement` per pair of judges with at least one shared battle, judges alphabetical.
    """
    from scipy import stats

    judges = sorted({j.judge for j in judgments})
    per_judge = {name: _by_battle([j for j in judgments if j.judge == name]) for name in judges}
    results = []
    for first, second in itertools.combinations(judges, 2):
        table_1, table_2 = per_judge[first], per_judge[second]
        confusion = np.zeros((3, 3), dtype=np.int64)
        for (prompt_set, prompt_id, a, b), outcomes_1 in table_1.items():
            # Same presentation order where the other judge saw it; otherwise the swapped one (humans often
            # see one random order only).
            outcomes_2 = table_2.get((prompt_set, prompt_id, a, b)) or table_2.get((prompt_set, prompt_id, b, a))
            if not outcomes_2:
                continue
            for o1, o2 in zip(outcomes_1, outcomes_2, strict=False):
                confusion[o1, o2] += 1
        shared = int(confusion.sum())
        if shared == 0:
            continue
        decisive = confusion[:2, :2]
        tau = rho = None
        common: list[str] = []
        if ratings is not None and first in ratings and second in ratings:
            common = sorted(set(ratings[first]) & set(ratings[second]))
            if len(common) >= 3:
                x = [ratings[first][m] for m in common]
                y = [ratings[second][m] for m in common]
                tau = _finite(stats.kendalltau(x, y).statistic)
                rho = _finite(stats.spearmanr(x, y).statistic)
        results.append(
            JudgeAgreement(
                judge_1=first,
                judge_2=second,
                shared=shared,
                agreement=float(np.trace(confusion) / shared),
                agreement_without_ties=float(np.trace(decisive) / decisive.sum()) if decisive.sum() else None,
                decisive_shared=int(decisive.sum()),
                cohen_kappa=cohen_kappa(confusion),
                rated_models=len(common),
                kendall_tau=tau,
                spearman_rho=rho,
                confusion=tuple(tuple(int(v) for v in row) for row in confusion),
            )
        )
    return results


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None

"""Agreement as the QLoRA paper measures it: per-judge majority votes, Fleiss' kappa among the raters of a
judge group (``human:*``), Cohen's kappa of one judge against a group's majority, and the rank correlation
(Kendall tau, Spearman rho, ``scipy.stats``) between rankings (pure functions, no I/O).

A *subject* is one prompt and one pair of models, whatever order the answers were shown in; every judgment of
it is one rating with an outcome seen from the alphabetical pair: the first model wins, the second wins, or a
tie (``BOTH_BAD`` counts as a tie, INVALID verdicts are no rating). A judge group is written ``PREFIX*`` and
holds every judge whose id starts with ``PREFIX`` (``human:*``: every human rater); a single judge is a group
of one. A group's (or judge's) majority vote on a subject is the outcome given strictly more often than any
other; a split subject has no majority and is left out of the majority comparisons.

The paper (Dettmers et al. 2023, section 6) reports Fleiss' kappa among human raters, Cohen's kappa between
GPT-4 and the human majority (0.25), and the rank correlation of the GPT-4 and human Elo rankings (Kendall
tau 0.43, Spearman 0.55).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qlora_eval.human.agreement import fleiss_kappa, plurality
from qlora_eval.types import Battle, Judgment, Verdict

#: Outcome labels of a subject, seen from the alphabetical pair.
OUTCOMES = ("first model wins", "second model wins", "tie")
Subject = tuple[str, str, str, str]  # (prompt_set, prompt_id, model sorting first, model sorting second)


def outcome(judgment: Judgment) -> int | None:
    """0: the alphabetically first model won, 1: the second won, 2: tie or both bad; None for INVALID."""
    if judgment.verdict is Verdict.INVALID:
        return None
    if judgment.verdict in (Verdict.TIE, Verdict.BOTH_BAD):
        return 2
    winner = judgment.model_a if judgment.verdict is Verdict.A else judgment.model_b
    return 0 if winner == min(judgment.model_a, judgment.model_b) else 1


def subject_of(judgment: Judgment) -> Subject:
    first, second = sorted((judgment.model_a, judgment.model_b))
    return judgment.prompt_set, judgment.prompt_id, first, second


def in_group(judge: str, group: str) -> bool:
    """Whether a judge belongs to a group (``PREFIX*``: any judge starting with PREFIX; else the judge itself)."""
    return judge.startswith(group[:-1]) if group.endswith("*") else judge == group


def default_groups(judges: Iterable[str]) -> list[str]:
    """``PREFIX*`` for each ``PREFIX:`` two or more judges share (``human:alice``, ``human:bob`` -> ``human:*``)."""
    prefixes = Counter(j.split(":", 1)[0] + ":" for j in judges if ":" in j)
    return sorted(f"{p}*" for p, n in prefixes.items() if n >= 2)


def ratings_by_subject(judgments: Sequence[Judgment], group: str) -> dict[Subject, list[tuple[str, int]]]:
    """Subject -> the (judge, outcome) ratings of the group's judges (INVALID left out)."""
    table: dict[Subject, list[tuple[str, int]]] = {}
    for j in judgments:
        label = outcome(j)
        if label is not None and in_group(j.judge, group):
            table.setdefault(subject_of(j), []).append((j.judge, label))
    return table


def majority_votes(judgments: Sequence[Judgment], group: str) -> dict[Subject, int | None]:
    """Subject -> the group's majority outcome (None: split, no strict plurality)."""
    return {s: plurality(label for _, label in rated) for s, rated in ratings_by_subject(judgments, group).items()}


@dataclass(frozen=True)
class GroupAgreement:
    """Agreement among the raters of one group (e.g. ``human:*``).

    Attributes:
        group: the group.
        raters: judges of the group with at least one rating.
        subjects: subjects rated by the group.
        multi_rated: subjects with two or more ratings (those Fleiss' kappa uses).
        fleiss_kappa: Fleiss' kappa over ``multi_rated`` subjects; None when there are none or every rating
            falls in one outcome.
        majority: outcome -> number of subjects whose majority it is, plus ``split``.
    """

    group: str
    raters: int
    subjects: int
    multi_rated: int
    fleiss_kappa: float | None
    majority: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "raters": self.raters,
            "subjects": self.subjects,
            "multi_rated": self.multi_rated,
            "fleiss_kappa": self.fleiss_kappa,
            "majority": dict(self.majority),
        }


def group_agreement(judgments: Sequence[Judgment], group: str) -> GroupAgreement:
    """Fleiss' kappa among a group's raters and the distribution of its majority votes."""
    table = ratings_by_subject(judgments, group)
    multi = [rated for rated in table.values() if len(rated) >= 2]
    kappa = None
    if multi:
        counts = np.zeros((len(multi), 3), dtype=np.int64)
        for row, rated in enumerate(multi):
            for _, label in rated:
                counts[row, label] += 1
        kappa = fleiss_kappa(counts)
    votes = [plurality(label for _, label in rated) for rated in table.values()]
    majority = {name: sum(v == i for v in votes) for i, name in enumerate(OUTCOMES)}
    majority["split"] = sum(v is None for v in votes)
    raters = {judge for rated in table.values() for judge, _ in rated}
    return GroupAgreement(group, len(raters), len(table), len(multi), kappa, majority)


@dataclass(frozen=True)
class MajorityAgreement:
    """One judge (or group) against another group's majority vote.

    Attributes:
        judge: the judge or group compared (its own majority per subject when it rated a subject twice).
        group: the group whose majority is the reference.
        shared: subjects where both have a majority.
        agreement: fraction of those with the same outcome; None if none shared.
        cohen_kappa: Cohen's kappa over the three outcomes; None if undefined.
        kendall_tau, spearman_rho: rank correlation of the judge's ranking and the ranking of the group's
            majority votes (filled by the caller that ranks them; None with fewer than 3 common models).
    """

    judge: str
    group: str
    shared: int
    agreement: float | None
    cohen_kappa: float | None
    kendall_tau: float | None = None
    spearman_rho: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "group": self.group,
            "shared": self.shared,
            "agreement": self.agreement,
            "cohen_kappa": self.cohen_kappa,
            "kendall_tau": self.kendall_tau,
            "spearman_rho": self.spearman_rho,
        }


def majority_agreement(judgments: Sequence[Judgment], judge: str, group: str) -> MajorityAgreement:
    """Cohen's kappa of ``judge``'s (majority) outcome against ``group``'s majority, over shared subjects."""
    mine, theirs = majority_votes(judgments, judge), majority_votes(judgments, group)
    confusion = np.zeros((3, 3), dtype=np.int64)
    for subject, label in mine.items():
        other = theirs.get(subject)
        if label is not None and other is not None:
            confusion[label, other] += 1
    shared = int(confusion.sum())
    return MajorityAgreement(
        judge, group, shared, float(np.trace(confusion) / shared) if shared else None, _cohen_kappa(confusion)
    )


def majority_battles(judgments: Sequence[Judgment], group: str) -> list[Battle]:
    """The group's majority votes as battles (one per subject with a majority), for ranking the majority."""
    battles = []
    for (prompt_set, prompt_id, first, second), label in sorted(majority_votes(judgments, group).items()):
        if label is None:
            continue
        verdict = (Verdict.A, Verdict.B, Verdict.TIE)[label]
        battles.append(Battle(first, second, verdict, f"{prompt_set}/{prompt_id}", judge=f"majority of {group}"))
    return battles


def rank_correlation(
    ratings_1: Mapping[str, float], ratings_2: Mapping[str, float]
) -> tuple[float | None, float | None]:
    """(Kendall tau, Spearman rho) of two rankings over their common models; None with fewer than 3."""
    from scipy import stats

    common = sorted(set(ratings_1) & set(ratings_2))
    if len(common) < 3:
        return None, None
    x = [ratings_1[m] for m in common]
    y = [ratings_2[m] for m in common]
    return _finite(stats.kendalltau(x, y).statistic), _finite(stats.spearmanr(x, y).statistic)


def _cohen_kappa(confusion: np.ndarray) -> float | None:
    total = confusion.sum()
    if total == 0:
        return None
    p_o = np.trace(confusion) / total
    p_e = float((confusion.sum(axis=0) * confusion.sum(axis=1)).sum() / total**2)
    return None if math.isclose(p_e, 1.0) else float((p_o - p_e) / (1.0 - p_e))


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None

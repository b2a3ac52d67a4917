"""Judge diagnostics for ``rank`` and ``tournament`` output: chains the judge engine's agreement statistics with
the rating engine (each judge's own ranking, for the rank correlation between judges).

The ``diagnostics`` JSON key::

    {"position_bias": {...first_win_rate, consistency...},   # from the ranking (rating/bias.py)
     "length_preference": {...} | null,                      # null when answer texts are not stored
     "agreement": [{"judge_1", "judge_2", "shared", "agreement", "agreement_without_ties", "cohen_kappa",
                    "kendall_tau", "spearman_rho", ...}]}     # one entry per pair of judges with shared battles
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from qlora_eval.errors import QloraEvalError
from qlora_eval.store import Store
from qlora_eval.types import Judgment
from qlora_eval.workflows.document import Diagnostics

if TYPE_CHECKING:
    from qlora_eval.rating import RankingResult

log = logging.getLogger(__name__)

#: Elo orderings used to rank each judge alone (only the order of models matters for the correlation).
AGREEMENT_ROUNDS = 200


def answer_length_table(store: Store, judgments: Sequence[Judgment]) -> dict[str, int]:
    """Answer key -> length in characters of the stored answers the judgments name."""
    return store.answer_lengths(k for j in judgments for k in (j.answer_a_key, j.answer_b_key) if k is not None)


def judge_diagnostics(
    result: RankingResult, judgments: Sequence[Judgment], *, seed: int, judge: str | None = None
) -> Diagnostics:
    """The ``diagnostics`` key: position bias and length preference of ``result``, agreement between judges.

    Args:
        result: the ranking whose position bias and length preference are reported.
        judgments: every judgment to compare judges on (a tournament adds the store's other judges).
        seed: seed of each judge's own Elo ranking (for the rank correlations).
        judge: the tournament's judge, recorded first (None for ``rank``).
    """
    import numpy as np

    from qlora_eval.judge.diagnostics import judge_agreement
    from qlora_eval.rating import RatingMethod, rank_battles

    judges = sorted({j.judge for j in judgments})
    agreements: list[dict[str, Any]] = []
    ratings: dict[str, dict[str, float]] = {}
    if len(judges) > 1:
        for judge in judges:
            own = [j.to_battle() for j in judgments if j.judge == judge]
            try:
                ranked = rank_battles(own, RatingMethod.ELO, AGREEMENT_ROUNDS, np.random.default_rng(seed))
            except QloraEvalError as exc:  # too few verdicts for a ranking: no correlation, the rest stands
                log.info("judge %s alone cannot be ranked (%s); no rank correlation for it", judge, exc)
                continue
            ratings[judge] = {r.model: r.rating for r in ranked.ratings}
        agreements = [a.to_dict() for a in judge_agreement(judgments, ratings)]
    groups, majority = group_diagnostics(judgments, ratings, seed=seed)
    return Diagnostics(
        position_bias=result.bias.to_dict(),
        length_preference=result.length.to_dict() if result.length is not None else None,
        agreement=tuple(agreements),
        judge=judge,
        groups=tuple(groups),
        majority_agreement=tuple(majority),
    )


def group_diagnostics(
    judgments: Sequence[Judgment], ratings: dict[str, dict[str, float]], *, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Majority votes, Fleiss' kappa per judge group and each judge against each group's majority (with the rank
    correlation of its ranking and the majority's), when two or more judges share prompts; else nothing.
    """
    import numpy as np

    from qlora_eval.human.group_agreement import (
        default_groups,
        group_agreement,
        majority_agreement,
        majority_battles,
        rank_correlation,
    )
    from qlora_eval.rating import RatingMethod, rank_battles

    judges = sorted({j.judge for j in judgments})
    prompts_by_judge = {name: {(j.prompt_set, j.prompt_id) for j in judgments if j.judge == name} for name in judges}
    sharing = [a for a in judges if any(prompts_by_judge[a] & prompts_by_judge[b] for b in judges if b != a)]
    if len(sharing) < 2:
        return [], []
    groups = default_groups(sharing)
    units = [*groups, *sharing]
    entries = [group_agreement(judgments, unit).to_dict() for unit in units]
    majority = []
    for group in units:
        battles = majority_battles(judgments, group)
        try:
            ranked = rank_battles(battles, RatingMethod.ELO, AGREEMENT_ROUNDS, np.random.default_rng(seed))
            group_ratings = {r.model: r.rating for r in ranked.ratings}
        except QloraEvalError as exc:
            log.info("the majority of %s cannot be ranked (%s); no rank correlation against it", group, exc)
            group_ratings = {}
        for judge in sharing:
            if judge == group or (group.endswith("*") and judge.startswith(group[:-1])):
                continue  # a judge against its own group's majority would be compared with itself
            row = majority_agreement(judgments, judge, group)
            if row.shared == 0:
                continue
            tau, rho = rank_correlation(ratings.get(judge, {}), group_ratings)
            majority.append({**row.to_dict(), "kendall_tau": tau, "spearman_rho": rho})
    return entries, majority

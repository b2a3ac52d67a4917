"""Human rating (L3 engine): raters and tokens, rating rounds (task assignment, self-consistency repeats with
sides swapped, votes turned into judgments under ``human:<rater>``) and agreement statistics (Fleiss' kappa,
agreement with the majority and with a reference judge). Storage goes through the typed methods of
``qlora_eval.store``; HTTP lives in ``qlora_eval.web``.
"""

from __future__ import annotations

from qlora_eval.human.agreement import fleiss_kappa, plurality
from qlora_eval.human.assignment import Progress, RoundConfig
from qlora_eval.human.raters import (
    active_rater_count,
    add_rater,
    check_rater_name,
    ensure_admin,
    hash_token,
    list_raters,
    new_rater_token,
    rater_for_token,
    restore_rater,
    revoke_rater,
    rotate_admin,
)
from qlora_eval.human.round import (
    HUMAN_JUDGE_PREFIX,
    HUMAN_TEMPLATE,
    RatingRound,
    ShownTask,
    VoteRejected,
)
from qlora_eval.human.stats import RoundStats, round_stats
from qlora_eval.store import Choice, Rater, Task, VoteRecord

__all__ = [
    "HUMAN_JUDGE_PREFIX",
    "HUMAN_TEMPLATE",
    "Choice",
    "Progress",
    "Rater",
    "RatingRound",
    "RoundConfig",
    "RoundStats",
    "ShownTask",
    "Task",
    "VoteRecord",
    "VoteRejected",
    "active_rater_count",
    "add_rater",
    "check_rater_name",
    "ensure_admin",
    "fleiss_kappa",
    "hash_token",
    "list_raters",
    "new_rater_token",
    "plurality",
    "rater_for_token",
    "restore_rater",
    "revoke_rater",
    "rotate_admin",
    "round_stats",
]

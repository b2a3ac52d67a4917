"""What the admin page shows: progress and agreement of a rating round.

Definitions (also printed on the page):

* inter-rater agreement: Fleiss' kappa over tasks with at least two first votes, four categories
  (first model better, second better, tie, both bad);
* agreement with the majority: for each first vote, the plurality of the *other* raters' first votes on the
  task (tasks where the others are tied or absent are left out), exact category;
* agreement with the reference judge (default ``openai:gpt-4``): three classes (first better, second better,
  no winner: tie and both bad together, as the judge has no "both bad"); the judge's verdict on a task is its
  verdict over all stored orders, and a judge that disagrees with itself across orders counts as "no winner"
  (as in the QLoRA paper); INVALID judge verdicts are left out;
* self-consistency: repeat votes (sides swapped) that match the rater's first vote, exact category.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from qlora_eval.human.agreement import fleiss_kappa, plurality
from qlora_eval.human.round import RatingRound
from qlora_eval.store import Rater, VoteRecord
from qlora_eval.types import Verdict

_CATEGORIES = (Verdict.A, Verdict.B, Verdict.TIE, Verdict.BOTH_BAD)


def three_class(verdict: Verdict) -> str:
    """first / second / none: a verdict as the three-class judge setting sees it."""
    return {Verdict.A: "first", Verdict.B: "second"}.get(verdict, "none")


@dataclass(frozen=True)
class Share:
    """``agree`` of ``n`` comparisons matched."""

    agree: int
    n: int

    @property
    def fraction(self) -> float | None:
        return self.agree / self.n if self.n else None


@dataclass(frozen=True)
class RaterStats:
    name: str
    revoked: bool
    votes: int
    repeats: int
    skipped: int
    pending: int
    with_majority: Share
    with_judge: Share
    self_consistency: Share


@dataclass(frozen=True)
class PairStats:
    model_x: str
    model_y: str
    tasks: int
    votes: int
    target: int


@dataclass(frozen=True)
class RoundStats:
    prompt_set: str
    models: list[str]
    raters_per_task: int
    tasks: int
    votes: int
    target: int
    kappa: float | None
    kappa_tasks: int
    reference_judge: str
    judged_tasks: int
    raters: list[RaterStats]
    pairs: list[PairStats]


def reference_verdicts(rnd: RatingRound, judge: str) -> dict[str, str]:
    """Task id -> the reference judge's three-class verdict about (model_x, model_y)."""
    by_pair: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for task in rnd.tasks.values():
        by_pair[(task.prompt_id, task.model_x, task.model_y)].append(task.task_id)
    labels: dict[str, set[str]] = defaultdict(set)
    for stored in rnd.store.judgments(judges=[judge], prompt_set=rnd.prompt_set):
        j = stored.judgment
        if j.verdict is Verdict.INVALID:
            continue
        x, y = sorted((j.model_a, j.model_b))
        for task_id in by_pair.get((j.prompt_id, x, y), []):
            task = rnd.tasks[task_id]
            keys = {j.answer_a_key, j.answer_b_key}
            # A judgment that names its answers must be about this task's answers (not an older version).
            if None not in keys and keys != {task.answer_x_key, task.answer_y_key}:
                continue
            verdict = j.verdict if j.model_a == x else j.verdict.swapped()
            labels[task_id].add(three_class(verdict))
    return {t: (next(iter(s)) if len(s) == 1 else "none") for t, s in labels.items()}


def round_stats(rnd: RatingRound, raters: list[Rater], reference_judge: str) -> RoundStats:
    """Progress and agreement of the round (see the module docstring for the definitions)."""
    votes = rnd.votes()
    first: dict[str, dict[str, VoteRecord]] = defaultdict(dict)  # task -> rater -> first vote
    repeat: dict[tuple[str, str], VoteRecord] = {}
    for v in votes:
        if v.is_repeat:
            repeat[(v.rater, v.task_id)] = v
        else:
            first[v.task_id][v.rater] = v
    judge_labels = reference_verdicts(rnd, reference_judge)

    rows = [[sum(1 for v in by.values() if v.verdict_xy is c) for c in _CATEGORIES] for by in first.values()]
    rows = [r for r in rows if sum(r) >= 2]
    kappa = fleiss_kappa(np.array(rows)) if rows else None

    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for a in rnd.assignments():
        state = "repeats" if a.is_repeat and a.voted else "votes" if a.voted else "skipped" if a.skipped else "pending"
        counts[a.rater][state] += 1
    majority: dict[str, list[bool]] = defaultdict(list)
    with_judge: dict[str, list[bool]] = defaultdict(list)
    for task_id, by in first.items():
        for name, v in by.items():
            others = plurality(o.verdict_xy for r, o in by.items() if r != name)
            if others is not None:
                majority[name].append(others is v.verdict_xy)
            if task_id in judge_labels:
                with_judge[name].append(judge_labels[task_id] == three_class(v.verdict_xy))
    consistent: dict[str, list[bool]] = defaultdict(list)
    for (name, task_id), v in repeat.items():
        if name in first.get(task_id, {}):
            consistent[name].append(first[task_id][name].verdict_xy is v.verdict_xy)

    def share(xs: list[bool]) -> Share:
        return Share(sum(xs), len(xs))

    rater_rows = [
        RaterStats(
            name=r.name,
            revoked=r.revoked_at is not None,
            votes=counts[r.name]["votes"],
            repeats=counts[r.name]["repeats"],
            skipped=counts[r.name]["skipped"],
            pending=counts[r.name]["pending"],
            with_majority=share(majority[r.name]),
            with_judge=share(with_judge[r.name]),
            self_consistency=share(consistent[r.name]),
        )
        for r in raters
    ]
    pair_tasks: dict[tuple[str, str], int] = defaultdict(int)
    pair_votes: dict[tuple[str, str], int] = defaultdict(int)
    for task in rnd.tasks.values():
        pair_tasks[task.pair] += 1
        pair_votes[task.pair] += len(first.get(task.task_id, {}))
    cap = rnd.config.raters_per_task
    pairs = [PairStats(x, y, n, pair_votes[(x, y)], n * cap) for (x, y), n in sorted(pair_tasks.items())]
    return RoundStats(
        prompt_set=rnd.prompt_set,
        models=rnd.models,
        raters_per_task=cap,
        tasks=len(rnd.tasks),
        votes=sum(p.votes for p in pairs),
        target=len(rnd.tasks) * cap,
        kappa=kappa,
        kappa_tasks=len(rows),
        reference_judge=reference_judge,
        judged_tasks=len(judge_labels),
        raters=rater_rows,
        pairs=pairs,
    )

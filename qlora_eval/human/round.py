"""A human rating round: the tasks over one prompt set and list of models, handed to raters, and their votes.

A *task* is one prompt with the answers of two models (``model_x < model_y`` alphabetically). The rules
for handing tasks out are in ``assignment``. Votes on a rater's first assignment of a task become judgments
(judge ``human:<rater>``); votes on a repeat (sides swapped) are kept as votes only and measure
self-consistency, so rankings never count a repeat.

Every read-decide-write runs in one ``store.atomic()`` group (``BEGIN IMMEDIATE``) and the store's tables
carry unique constraints, so concurrent raters never get a slot twice or store a vote twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations

from qlora_eval.errors import ConfigError, QloraEvalError
from qlora_eval.human import assignment as rules
from qlora_eval.human.assignment import Progress, RoundConfig
from qlora_eval.store import HUMAN_JUDGE_PREFIX, Assignment, Choice, Rater, Store, Task, VoteRecord
from qlora_eval.types import Answer, Judgment, Order, Prompt, content_key, utc_now

HUMAN_TEMPLATE = "human-form-v1"
"""The ``template_hash`` of every judgment made through the form (it names the form's version)."""

__all__ = ["HUMAN_JUDGE_PREFIX", "HUMAN_TEMPLATE", "RatingRound", "ShownTask", "VoteRejected"]


class VoteRejected(QloraEvalError):
    """A vote or skip that cannot be accepted; ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class ShownTask:
    """A task as one rater sees it (blind: no model names)."""

    assignment_id: str
    prompt: Prompt
    left_text: str
    right_text: str
    progress: Progress


class RatingRound:
    """The tasks over one prompt set and list of models, and the rules that hand them to raters."""

    def __init__(
        self, store: Store, *, prompt_set: str, models: list[str] | None = None, config: RoundConfig | None = None
    ) -> None:
        """Build (and persist) the round's tasks from the stored answers.

        Args:
            store: an open store.
            prompt_set: the prompt set to rate.
            models: the models to compare (default: every model with answers in the set); at least two.
            config: round settings.

        Raises:
            ConfigError: fewer than two models with answers, a named model without answers, or answers
                whose prompt is not stored.
        """
        self.store = store
        self.prompt_set = prompt_set
        self.config = config or RoundConfig()
        answers = store.answers(models=models, prompt_set=prompt_set)
        present = sorted({a.model for a in answers})
        if models is not None:
            missing = sorted(set(models) - set(present))
            if missing:
                raise ConfigError(
                    f"model(s) {', '.join(missing)} have no answers for prompt set {prompt_set!r}; "
                    f"run `qlora-eval generate` for them first (models with answers: {', '.join(present) or 'none'})"
                )
        if len(present) < 2:
            raise ConfigError(
                f"rating needs answers of at least two models for prompt set {prompt_set!r}, found "
                f"{len(present)} ({', '.join(present) or 'none'}); run `qlora-eval generate` first"
            )
        self.models = present
        # The newest answer of each model to each prompt version wins.
        latest: dict[tuple[str, str, str], Answer] = {}
        for a in answers:
            latest[(a.model, a.prompt_id, a.prompt_hash)] = a
        self.answers: dict[str, Answer] = {a.answer_key: a for a in latest.values()}
        self.prompts = self._load_prompts({(a.prompt_id, a.prompt_hash) for a in latest.values()})
        by_prompt: dict[tuple[str, str], list[Answer]] = defaultdict(list)
        for a in latest.values():
            by_prompt[(a.prompt_id, a.prompt_hash)].append(a)
        tasks: dict[str, Task] = {}
        self.task_prompt: dict[str, tuple[str, str]] = {}
        for key in sorted(by_prompt):
            group = sorted(by_prompt[key], key=lambda a: a.model)
            for ax, ay in combinations(group, 2):
                task_id = content_key("web-task", prompt_set, key[0], ax.model, ax.answer_key, ay.model, ay.answer_key)
                tasks[task_id[:32]] = Task(
                    task_id[:32], prompt_set, key[0], ax.model, ay.model, ax.answer_key, ay.answer_key
                )
                self.task_prompt[task_id[:32]] = key
        self.tasks = tasks
        store.add_tasks(tasks.values())

    def _load_prompts(self, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], Prompt]:
        found = {
            (v.prompt.prompt_id, v.content_hash): v.prompt
            for v in self.store.prompt_versions(self.prompt_set)
            if (v.prompt.prompt_id, v.content_hash) in wanted
        }
        missing = sorted(wanted - set(found))
        if missing:
            ids = ", ".join(pid for pid, _ in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise ConfigError(
                f"{len(missing)} answered prompt(s) of set {self.prompt_set!r} are not in the store's prompts "
                f"table (ids {ids}); store the prompt set (e.g. run `qlora-eval generate` with it) first"
            )
        return found

    # -- handing out tasks ---------------------------------------------------------------------

    def _open_tasks(self, rater: str) -> list[str]:
        cutoff = rules.lease_cutoff(self.config.lease_s, datetime.now(UTC))
        return rules.open_tasks(self.store.assignments(first_only=True), list(self.tasks), rater, self.config, cutoff)

    def _progress(self, rater: str) -> Progress:
        mine = self.store.assignments(rater=rater)
        return rules.progress(mine, self.tasks, len(self._open_tasks(rater)), self.config)

    def next_for(self, rater: Rater) -> ShownTask | None:
        """The rater's current task: an unanswered one already assigned, else a new assignment; None when done."""
        with self.store.atomic():
            mine = self.store.assignments(rater=rater.name)
            pending = rules.pending(mine, self.tasks)
            if pending:
                assignment_id, task_id, left = pending[0].assignment_id, pending[0].task_id, pending[0].left_model
            else:
                votes = self.store.votes(rater=rater.name)
                pick = rules.choose(mine, votes, self._open_tasks(rater.name), self.tasks, rater.name, self.config)
                if pick is None:
                    return None
                assignment_id = content_key("web-assignment", rater.name, pick.task_id, int(pick.is_repeat))[:32]
                self.store.add_assignment(
                    assignment_id, rater.name, pick.task_id, is_repeat=pick.is_repeat, left_model=pick.left_model
                )
                task_id, left = pick.task_id, pick.left_model
            progress = self._progress(rater.name)
        task = self.tasks[task_id]
        left_key = task.answer_x_key if left == task.model_x else task.answer_y_key
        right_key = task.answer_y_key if left == task.model_x else task.answer_x_key
        return ShownTask(
            assignment_id=assignment_id,
            prompt=self.prompts[self.task_prompt[task_id]],
            left_text=self.answers[left_key].text,
            right_text=self.answers[right_key].text,
            progress=progress,
        )

    def progress(self, rater: Rater) -> Progress:
        """The rater's progress in this round."""
        with self.store.atomic():
            return self._progress(rater.name)

    # -- votes ---------------------------------------------------------------------------------

    def _own_assignment(self, rater: str, assignment_id: str) -> Assignment:
        a = self.store.assignment(assignment_id)
        if a is None:
            if self.store.has_task(assignment_id):
                raise VoteRejected(400, f"task {assignment_id} is not assigned to you; ask GET /api/next for yours")
            raise VoteRejected(400, "unknown task id; ask GET /api/next for your current task")
        if a.rater != rater:
            raise VoteRejected(400, f"task {assignment_id} is not assigned to you; ask GET /api/next for yours")
        if a.task_id not in self.tasks:
            raise VoteRejected(400, f"task {assignment_id} belongs to another rating round than the one served now")
        if a.voted:
            raise VoteRejected(409, f"you already voted on task {assignment_id}; a vote cannot be changed")
        if a.skipped:
            raise VoteRejected(409, f"you skipped task {assignment_id}; it cannot be voted on any more")
        return a

    def vote(self, rater: Rater, assignment_id: str, choice: Choice, rationale: str = "") -> Progress:
        """Store a vote: a judgment under ``human:<rater>`` for a first vote, a repeat record otherwise.

        Raises:
            VoteRejected: unknown task (400), not this rater's (400), already voted or skipped (409).
                Nothing is stored then.
        """
        with self.store.atomic():
            a = self._own_assignment(rater.name, assignment_id)
            task = self.tasks[a.task_id]
            left = a.left_model
            verdict = choice.verdict
            verdict_xy = verdict if left == task.model_x else verdict.swapped()
            judgment_key: str | None = None
            if not a.is_repeat:
                judgment = vote_judgment(task, left, rater, choice, rationale)
                if self.store.add_judgments([judgment]) != 1:
                    raise VoteRejected(409, f"a judgment for task {assignment_id} by {rater.name} is already stored")
                judgment_key = judgment.judgment_key
            self.store.add_vote(
                VoteRecord(
                    assignment_id=assignment_id,
                    rater=rater.name,
                    task_id=task.task_id,
                    is_repeat=a.is_repeat,
                    choice=choice,
                    verdict_xy=verdict_xy,
                    judgment_key=judgment_key,
                    rationale=rationale,
                    created_at=utc_now(),
                )
            )
            return self._progress(rater.name)

    def skip(self, rater: Rater, assignment_id: str) -> Progress:
        """Skip the rater's task: it is not shown to them again and its slot goes to another rater.

        Raises:
            VoteRejected: as for ``vote``.
        """
        with self.store.atomic():
            self._own_assignment(rater.name, assignment_id)
            self.store.skip_assignment(assignment_id)
            return self._progress(rater.name)

    # -- reading back --------------------------------------------------------------------------

    def votes(self) -> list[VoteRecord]:
        """Every vote of this round, oldest first."""
        return [v for v in self.store.votes() if v.task_id in self.tasks]

    def assignments(self) -> list[Assignment]:
        """Every assignment of this round, oldest first."""
        return [a for a in self.store.assignments() if a.task_id in self.tasks]


def vote_judgment(task: Task, left: str, rater: Rater, choice: Choice, rationale: str) -> Judgment:
    """The judgment a first vote becomes: about the answers in the order the rater saw them (left = A)."""
    right = task.other(left)
    left_key = task.answer_x_key if left == task.model_x else task.answer_y_key
    right_key = task.answer_y_key if left == task.model_x else task.answer_x_key
    return Judgment(
        judge=rater.judge,
        model_a=left,
        model_b=right,
        prompt_set=task.prompt_set,
        prompt_id=task.prompt_id,
        verdict=choice.verdict,
        order=Order.of(left, right),
        template_hash=HUMAN_TEMPLATE,
        answer_a_key=left_key,
        answer_b_key=right_key,
        rationale=rationale,
    )

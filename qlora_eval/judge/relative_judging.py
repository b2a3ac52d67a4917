"""The relative protocol (``judge --protocol relative --reference MODEL``): the paper's "% of ChatGPT" judgments.

For every prompt and every model other than the reference, the judge sees the model's and the reference's
answers in both orders and writes two scores from 1 to 10 on its reply's first line (``S1 S2``, read as the
paper's ``eval_gpt_review.py`` reads it; unparsable replies are INVALID calls, counted, never scored). Each
call becomes a :class:`~qlora_eval.types.RelativeJudgment` in the store's own table, exactly like the paper's
imported review files, so ``rank --method relative`` scores both alike. Calls already stored (same content key)
are never paid for again; a failed call is not stored, so the next run makes it again.

The judge must write text: an ``openai:MODEL[?base_url=URL]`` judge (OpenAI, or any local model behind vLLM or
``transformers serve``). The next-token and likelihood judges read one digit or a log-probability and cannot
give two scores, so they are refused with that remedy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any

from qlora_eval.errors import ConfigError
from qlora_eval.judge.kind import JudgeSpec
from qlora_eval.judge.options import JudgeOptions
from qlora_eval.judge.templates import JudgeTemplate, TemplateSet
from qlora_eval.store import Store
from qlora_eval.types import Answer, Message, Order, Prompt, RelativeJudgment


@dataclass(frozen=True)
class RelativeRequest:
    """One relative call to make: ``record`` holds everything but the scores (its key is the call's key)."""

    record: RelativeJudgment
    template: JudgeTemplate
    messages: tuple[Message, ...]


@dataclass(frozen=True)
class RelativePlan:
    """The calls of a relative run: still to make, already stored, and answers that are missing."""

    requests: list[RelativeRequest]
    stored_keys: list[str]
    missing_answers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.requests) + len(self.stored_keys)


@dataclass(frozen=True)
class RelativeSummary:
    """What a relative run did."""

    planned: int
    already_stored: int
    new: int
    invalid: int
    failed: int
    requests: int
    cost_usd: float
    not_started: int = 0
    errors: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Every planned call is stored (none failed, none left out by the budget)."""
        return self.failed == 0 and self.not_started == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": "relative",
            "planned": self.planned,
            "already_stored": self.already_stored,
            "new": self.new,
            "invalid": self.invalid,
            "failed": self.failed,
            "not_started": self.not_started,
            "requests": self.requests,
            "cost_usd": round(self.cost_usd, 6),
        }


def relative_settings(spec: JudgeSpec, options: JudgeOptions) -> dict[str, Any]:
    """The settings keying every relative judgment: the judge's own, with the protocol named."""
    return {**spec.settings(options), "protocol": "relative-two-scores"}


def check_relative_judge(spec: JudgeSpec) -> None:
    """Refuse judge kinds that cannot write two scores (next-token and likelihood judges)."""
    if spec.kind.runs_locally:
        raise ConfigError(
            f"--protocol relative needs a judge that writes text; {spec.text!r} reads next-token probabilities. "
            "Serve the model (vllm serve / transformers serve) and use --judge openai:MODEL?base_url=URL"
        )


def plan_relative(
    store: Store,
    *,
    spec: JudgeSpec,
    options: JudgeOptions,
    prompts: Sequence[Prompt],
    answers: Mapping[tuple[str, str], Answer],
    models: Sequence[str],
    reference: str,
    templates: TemplateSet,
) -> RelativePlan:
    """Every (prompt, model vs reference, order) call, split into stored and still to make."""
    check_relative_judge(spec)
    others = sorted(set(models) - {reference})
    if not others:
        raise ConfigError(f"--protocol relative needs a model besides the reference {reference!r} in --models")
    settings = relative_settings(spec, options)
    requests: list[RelativeRequest] = []
    stored: list[str] = []
    missing: list[tuple[str, str]] = []
    for prompt in prompts:
        template = templates.for_prompt(prompt)
        if (reference, prompt.prompt_id) not in answers:
            missing.append((reference, prompt.prompt_id))
            continue
        for model in others:
            if (model, prompt.prompt_id) not in answers:
                missing.append((model, prompt.prompt_id))
                continue
            for first, second in ((model, reference), (reference, model)):
                answer_a, answer_b = answers[(first, prompt.prompt_id)], answers[(second, prompt.prompt_id)]
                record = RelativeJudgment(
                    judge=spec.judge_id,
                    model_a=first,
                    model_b=second,
                    prompt_set=prompt.prompt_set,
                    prompt_id=prompt.prompt_id,
                    scores=None,
                    order=Order.of(first, second),
                    template_hash=template.sha256,
                    answer_a_key=answer_a.answer_key,
                    answer_b_key=answer_b.answer_key,
                    settings=settings,
                )
                if store.has_relative_judgment(record.judgment_key):
                    stored.append(record.judgment_key)
                    continue
                messages = tuple(template.render_prompt(prompt, answer_a.text, answer_b.text))
                requests.append(RelativeRequest(record, template, messages))
    return RelativePlan(requests, stored, missing)


def run_relative(store: Store, plan: RelativePlan, *, spec: JudgeSpec, options: JudgeOptions) -> RelativeSummary:
    """Make the plan's calls, storing each judgment as it arrives (nothing is stored for a failed call)."""
    from qlora_eval.judge.base import Budget
    from qlora_eval.judge.openai_judge import Completion, OpenAIJudge, estimate_call_usd
    from qlora_eval.judge.session import make_judge

    if not plan.requests:
        return RelativeSummary(plan.total, len(plan.stored_keys), 0, 0, 0, 0, 0.0)
    judge = make_judge(spec, options)
    if not isinstance(judge, OpenAIJudge):
        judge.close()
        check_relative_judge(spec)
        raise ConfigError(f"--protocol relative supports openai judges only, not {spec.text!r}")
    budget = Budget(options.budget_usd)

    def call(request: RelativeRequest) -> Completion | None:
        estimate = estimate_call_usd(judge.price, request.messages, options.max_tokens, judge.tokens)
        if not budget.try_reserve(estimate):
            return None  # left for a run with a larger budget
        done = judge.complete(request.messages)
        budget.settle(estimate, done.cost_usd)
        return done

    counts = {"new": 0, "invalid": 0, "failed": 0, "calls": 0, "not_started": 0, "done": 0}
    cost = 0.0
    errors: list[str] = []

    def handle(request: RelativeRequest, done: Completion | None) -> None:
        nonlocal cost
        counts["done"] += 1
        if done is None:
            counts["not_started"] += 1
            return
        counts["calls"] += done.attempts
        cost += done.cost_usd
        if done.text is None:
            counts["failed"] += 1
            where = f"{request.record.prompt_id} {request.record.model_a}/{request.record.model_b}"
            errors.append(f"{where}: {done.error}")
            return
        scores = request.template.parse_scores(done.text)
        record = replace(
            request.record,
            scores=scores,
            rationale=done.text,
            cost_usd=done.cost_usd,
            prompt_tokens=done.prompt_tokens,
            completion_tokens=done.completion_tokens,
        )
        counts["new"] += store.add_relative_judgments([record])
        counts["invalid"] += scores is None

    # Each reply is stored as it arrives (not in plan order), so an error in one call loses no other paid reply.
    pool = ThreadPoolExecutor(max_workers=max(1, options.concurrency), thread_name_prefix="relative")
    pending: dict[Future[Completion | None], RelativeRequest] = {}
    try:
        pending = {pool.submit(call, request): request for request in plan.requests}
        for future in as_completed(pending):
            handle(pending.pop(future), future.result())
    finally:
        # On an error or Ctrl-C: cancel the queued calls (never paid), let those in flight finish, store their replies.
        pool.shutdown(wait=True, cancel_futures=True)
        for future, request in list(pending.items()):
            if future.done() and not future.cancelled() and future.exception() is None:
                handle(request, future.result())
        judge.close()
    new, invalid, failed, calls = counts["new"], counts["invalid"], counts["failed"], counts["calls"]
    not_started = counts["not_started"] + len(plan.requests) - counts["done"]
    return RelativeSummary(
        plan.total, len(plan.stored_keys), new, invalid, failed, calls, cost, not_started, tuple(errors)
    )

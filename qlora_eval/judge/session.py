"""One judging job from start to end: plan the calls, price them, build the judge, run it.

Both ``qlora-eval judge`` and ``qlora-eval tournament`` call :func:`plan` and :func:`judge`; the CLI only parses
options and prints.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qlora_eval.errors import ConfigError
from qlora_eval.judge.base import Budget, Judge
from qlora_eval.judge.local_judge import local_judge_settings
from qlora_eval.judge.openai_judge import (
    RetryPolicy,
    estimate_call_usd,
    estimate_prompt_tokens,
    openai_judge_settings,
)
from qlora_eval.judge.plan import JudgePlan, plan_judgments
from qlora_eval.judge.pricing import Price, PriceTable, load_prices
from qlora_eval.judge.runner import JudgeRunSummary, run_judge
from qlora_eval.judge.spec import JudgeKind, JudgeSpec
from qlora_eval.judge.templates import TemplateSet, load_templates
from qlora_eval.store import Store
from qlora_eval.types import Answer, Prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JudgeOptions:
    """How to judge (every field that changes verdicts is recorded in the judgments' settings).

    Attributes:
        temperature, max_tokens: the openai judge's sampling (a local judge reads one token and ignores them).
        concurrency: openai calls in flight at once.
        budget_usd: stop before spending more than this (None: no limit).
        prices_path: a user price table on top of the shipped one.
        retry: the openai judge's retry policy.
        seed: seeds the backoff jitter.
        pairs: the pairing scheme.
        local_batch_size: prompts per forward pass of a local judge (None: 1 on a CPU, 8 on a GPU).
        template_dir: a folder with judge templates and their manifest (default: the shipped ones).
    """

    temperature: float = 0.0
    max_tokens: int = 1024
    concurrency: int = 4
    budget_usd: float | None = None
    prices_path: Path | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    seed: int = 0
    pairs: str = "all"
    local_batch_size: int | None = None
    template_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.budget_usd is not None and self.budget_usd < 0:
            raise ConfigError(f"--budget-usd must be >= 0, got {self.budget_usd}")
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency must be >= 1, got {self.concurrency}")
        if self.max_tokens < 1:
            raise ConfigError(f"--max-tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"--temperature must be >= 0, got {self.temperature}")


@dataclass(frozen=True)
class Estimate:
    """What a plan would cost before anything is spent.

    Attributes:
        calls: judge calls to make (re-asks not counted: they happen only for unparsable replies).
        prompt_tokens: estimated prompt tokens of those calls (characters / 4).
        max_completion_tokens: completion tokens if every reply used ``max_tokens`` (an upper bound).
        cost_usd: estimated dollars (prompt estimate + full completions), 0 for local judges.
        priced: False when an openai judge's model has no entry in the price table.
    """

    calls: int
    prompt_tokens: int
    max_completion_tokens: int
    cost_usd: float
    priced: bool


def settings_for(spec: JudgeSpec, options: JudgeOptions) -> dict[str, Any]:
    """The judge settings recorded with each judgment (and part of its key)."""
    if spec.kind is JudgeKind.LOCAL:
        return local_judge_settings(spec.target)
    return openai_judge_settings(spec.target, options.temperature, options.max_tokens)


def price_for(spec: JudgeSpec, options: JudgeOptions) -> tuple[Price | None, PriceTable]:
    """The judge's price (None if unknown; local judges cost 0) and the table it came from.

    Raises:
        ConfigError: when a budget is set but the model has no price (a budget cannot be kept blind).
    """
    table = load_prices(options.prices_path)
    if spec.kind is JudgeKind.LOCAL:
        return Price(0.0, 0.0), table
    price = table.get(spec.target)
    if price is None and options.budget_usd is not None:
        raise ConfigError(
            f"--budget-usd needs the price of judge model {spec.target!r}, which the price table "
            f"({', '.join(table.sources)}) lacks; add 'models: {{{spec.target}: {{input_per_mtok: X, "
            "output_per_mtok: Y}}}' to a YAML file and pass it with --prices FILE"
        )
    return price, table


def plan(
    store: Store,
    *,
    spec: JudgeSpec,
    options: JudgeOptions,
    prompts: Sequence[Prompt],
    answers: Mapping[tuple[str, str], Answer],
    models: Sequence[str],
    templates: TemplateSet | None = None,
) -> JudgePlan:
    """The plan of a judging job: calls still to make and judgments already stored."""
    return plan_judgments(
        prompts=prompts,
        answers=answers,
        models=models,
        judge_id=spec.judge_id,
        judge_settings=settings_for(spec, options),
        templates=templates or load_templates(options.template_dir),
        is_stored=store.has_judgment,
        pairs=options.pairs,
    )


def estimate(plan_: JudgePlan, spec: JudgeSpec, options: JudgeOptions) -> Estimate:
    """Price a plan without calling anything."""
    price, _ = price_for(spec, options)
    prompt_tokens = sum(estimate_prompt_tokens(r.messages) for r in plan_.requests)
    completion = options.max_tokens * len(plan_.requests) if spec.kind is JudgeKind.OPENAI else len(plan_.requests)
    cost = sum(estimate_call_usd(price, r.messages, options.max_tokens) for r in plan_.requests)
    return Estimate(len(plan_.requests), prompt_tokens, completion, cost, price is not None)


def make_judge(spec: JudgeSpec, options: JudgeOptions) -> Judge:
    """Build the judge a spec names (loads the local model / creates the API client)."""
    if spec.kind is JudgeKind.LOCAL:
        from qlora_eval.judge.local_judge import LocalJudge

        return LocalJudge(spec.target, batch_size=options.local_batch_size)
    from qlora_eval.judge.openai_judge import OpenAIJudge

    price, table = price_for(spec, options)
    if price is None:
        log.warning(
            "judge model %r has no price in %s: its cost is counted as $0; add it with --prices FILE",
            spec.target,
            ", ".join(table.sources),
        )
    return OpenAIJudge(
        spec.target,
        base_url=spec.base_url,
        price=price,
        temperature=options.temperature,
        max_tokens=options.max_tokens,
        concurrency=options.concurrency,
        retry=options.retry,
        rng=np.random.default_rng(options.seed),
        judge_id=spec.judge_id,
    )


def judge(
    store: Store,
    plan_: JudgePlan,
    *,
    spec: JudgeSpec,
    options: JudgeOptions,
    run_id: int | None = None,
    progress: bool = True,
) -> JudgeRunSummary:
    """Make the plan's calls (none if everything is stored: the judge is not even loaded)."""
    budget = Budget(options.budget_usd)
    if not plan_.requests:
        return run_judge_empty(plan_)
    judge_ = make_judge(spec, options)
    try:
        return run_judge(
            store,
            judge_,
            plan_.requests,
            already_stored=len(plan_.stored_keys),
            budget=budget,
            run_id=run_id,
            progress=progress,
        )
    finally:
        judge_.close()


def run_judge_empty(plan_: JudgePlan) -> JudgeRunSummary:
    """The summary of a run with nothing left to do."""
    return JudgeRunSummary(
        planned=plan_.total,
        already_stored=len(plan_.stored_keys),
        new=0,
        invalid=0,
        failed=0,
        not_started=0,
        requests=0,
        reasked=0,
        cost_usd=0.0,
        stopped_by_budget=False,
    )

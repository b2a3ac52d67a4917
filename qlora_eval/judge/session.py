"""One judging job from start to end: plan the calls, price them, build the judge, run it.

Both ``qlora-eval judge`` and ``qlora-eval tournament`` call :func:`plan` and :func:`judge`; the CLI only parses
options and prints.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from qlora_eval.errors import ConfigError
from qlora_eval.judge.base import Budget, Judge
from qlora_eval.judge.kind import JudgeSpec
from qlora_eval.judge.openai_judge import estimate_call_usd, estimate_prompt_tokens
from qlora_eval.judge.options import JudgeOptions
from qlora_eval.judge.plan import JudgePlan, plan_judgments, reusable_verdicts
from qlora_eval.judge.pricing import Price, PriceTable, load_prices
from qlora_eval.judge.runner import JudgeRunSummary, run_judge
from qlora_eval.judge.templates import TemplateSet, resolve_templates
from qlora_eval.judge.tokens import token_counter
from qlora_eval.store import Store
from qlora_eval.types import Answer, Message, Prompt

__all__ = [
    "Estimate",
    "JudgeOptions",
    "estimate",
    "estimate_messages",
    "judge",
    "make_judge",
    "plan",
    "price_for",
    "run_judge_empty",
    "templates_for",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Estimate:
    """What a plan would cost before anything is spent.

    Attributes:
        calls: judge calls to make (re-asks not counted: they happen only for unparsable replies).
        prompt_tokens: prompt tokens of those calls, counted as ``token_method`` says.
        max_completion_tokens: completion tokens if every reply used ``max_tokens`` (an upper bound).
        cost_usd: estimated dollars (prompt estimate + full completions), 0 for local judges.
        priced: False when an openai judge's model has no entry in the price table.
        token_method: how prompt tokens were counted (the model's tokenizer, or the conservative fallback and why).
    """

    calls: int
    prompt_tokens: int
    max_completion_tokens: int
    cost_usd: float
    priced: bool
    token_method: str = ""


def price_for(spec: JudgeSpec, options: JudgeOptions) -> tuple[Price | None, PriceTable]:
    """The judge's price (None if unknown; local judges cost 0) and the table it came from.

    Raises:
        ConfigError: when a budget is set but the model has no price (a budget cannot be kept blind).
    """
    table = load_prices(options.prices_path)
    price = spec.kind.price(spec, table)
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
    """The plan of a judging job: calls still to make, judgments already stored, imported ones reused.

    Raises:
        ConfigError: ``options.reuse_imported`` names a judge with no stored verdicts on these models.
    """
    reusable = None
    if options.reuse_imported is not None:
        reusable = reusable_verdicts(
            [
                (s.key, s.judgment)
                for s in store.judgments(
                    judges=[options.reuse_imported], models=list(models), prompt_set=prompts[0].prompt_set
                )
            ]
            if prompts
            else []
        )
        if not reusable:
            judges = store.judges()
            near = difflib.get_close_matches(options.reuse_imported, judges, n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else f"; stored judges: {', '.join(judges) or 'none'}"
            raise ConfigError(
                f"--reuse-imported {options.reuse_imported!r}: that judge has no stored verdicts on these models "
                f"and prompts{hint}"
            )
    return plan_judgments(
        prompts=prompts,
        answers=answers,
        models=models,
        judge_id=spec.judge_id,
        judge_settings=spec.settings(options),
        templates=templates or templates_for(options),
        is_stored=store.has_judgment,
        pairs=options.pairs,
        reusable=reusable,
        retry_invalid=store.judgment_verdict if options.retry_invalid else None,
    )


def templates_for(options: JudgeOptions, protocol: str = "pairwise") -> TemplateSet:
    """The template set the options name (``--judge-templates``, a template folder, ``--data-dir``)."""
    return resolve_templates(
        options.judge_templates, protocol=protocol, template_dir=options.template_dir, data_dir=options.data_dir
    )


def estimate(plan_: JudgePlan, spec: JudgeSpec, options: JudgeOptions) -> Estimate:
    """Price a plan without calling anything."""
    return estimate_messages([r.messages for r in plan_.requests], spec, options)


def estimate_messages(calls: Sequence[Sequence[Message]], spec: JudgeSpec, options: JudgeOptions) -> Estimate:
    """Price judge calls given by their rendered messages (a plan's, or a dry run's with placeholder answers).

    Returns:
        The estimate; ``spec.kind.runs_locally`` tells a free local judge from a paid one, ``priced`` whether
        the price table knows the model.
    """
    price, table = price_for(spec, options)
    if options.batch:
        from qlora_eval.judge.batch_session import batch_price

        price = batch_price(spec, table, options)
    per_call = spec.kind.completion_tokens(options)
    tokens = token_counter(spec.target)
    prompt_tokens = sum(estimate_prompt_tokens(messages, tokens) for messages in calls)
    cost = sum(estimate_call_usd(price, messages, per_call, tokens) for messages in calls)
    return Estimate(len(calls), prompt_tokens, per_call * len(calls), cost, price is not None, tokens.method)


def make_judge(spec: JudgeSpec, options: JudgeOptions) -> Judge:
    """Build the judge a spec names (loads the local model / creates the API client)."""
    price, table = price_for(spec, options)
    if price is None:
        log.warning(
            "judge model %r has no price in %s: its cost is counted as $0; add it with --prices FILE",
            spec.target,
            ", ".join(table.sources),
        )
    return spec.kind.build(spec, options, price)


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
    if options.batch:
        from qlora_eval.judge.batch_session import as_run_summary, run_batch

        return as_run_summary(run_batch(store, plan_, spec=spec, options=options, run_id=run_id))
    judge_ = make_judge(spec, options)
    try:
        summary = run_judge(
            store,
            judge_,
            plan_.requests,
            already_stored=len(plan_.stored_keys) + len(plan_.reused_keys),
            budget=budget,
            run_id=run_id,
            progress=progress,
        )
        return replace(summary, cpu_threads=judge_.cpu_threads)
    finally:
        judge_.close()


def run_judge_empty(plan_: JudgePlan) -> JudgeRunSummary:
    """The summary of a run with nothing left to do."""
    return JudgeRunSummary(
        planned=plan_.total,
        already_stored=len(plan_.stored_keys) + len(plan_.reused_keys),
        new=0,
        invalid=0,
        failed=0,
        not_started=0,
        requests=0,
        reasked=0,
        cost_usd=0.0,
        stopped_by_budget=False,
    )

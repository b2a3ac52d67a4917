"""``qlora-eval judge --protocol relative --reference MODEL``: two 1-10 scores per call, in both orders.

Stored like the paper's imported relative reviews; ``qlora-eval rank --db DB --method relative --reference MODEL``
turns them into each model's score as a percentage of the reference's.
"""

from __future__ import annotations

import argparse

from qlora_eval.errors import ConfigError
from qlora_eval.judge.kind import JudgeSpec
from qlora_eval.judge.options import JudgeOptions
from qlora_eval.judge.relative_judging import RelativeSummary, plan_relative, run_relative
from qlora_eval.judge.session import estimate_messages, templates_for
from qlora_eval.store import Store
from qlora_eval.types import Answer, Prompt


def plan_and_run(
    store: Store,
    args: argparse.Namespace,
    spec: JudgeSpec,
    options: JudgeOptions,
    prompts: list[Prompt],
    answers: dict[tuple[str, str], Answer],
) -> tuple[int, dict[str, object]]:
    """Plan (and unless ``--dry-run``, make) the relative calls; returns the exit code and the JSON figures."""
    if args.reference is None:
        raise ConfigError("--protocol relative needs --reference MODEL (the model the others are a % of)")
    if args.reference not in args.models:
        raise ConfigError(f"--reference {args.reference!r} must be one of --models {args.models}")
    if options.reuse_imported is not None:
        raise ConfigError(
            "--reuse-imported applies to pairwise verdicts; imported relative reviews are reused "
            "by rank --method relative directly"
        )
    plan = plan_relative(
        store,
        spec=spec,
        options=options,
        prompts=prompts,
        answers=answers,
        models=args.models,
        reference=args.reference,
        templates=templates_for(options, protocol="relative"),
    )
    est = estimate_messages([r.messages for r in plan.requests], spec, options)
    if args.dry_run:
        cost = f"${est.cost_usd:.4f} (upper bound)" if est.priced else f"unknown ({spec.target!r} has no price)"
        print(
            f"judge {spec.judge_id} (relative, reference {args.reference}): {plan.total} calls planned, "
            f"{len(plan.stored_keys)} already stored, {est.calls} calls to make; estimated cost: {cost}"
        )
        return 0, {
            "dry_run": True,
            "protocol": "relative",
            "planned": plan.total,
            "calls": est.calls,
            "estimated_cost_usd": round(est.cost_usd, 6) if est.priced else None,
        }
    run_id = store.start_run(
        "judge",
        {
            "judge": spec.text,
            "protocol": "relative",
            "reference": args.reference,
            "models": sorted(args.models),
            "prompts": prompts[0].prompt_set,
        },
    )
    summary: RelativeSummary | None = None
    try:
        summary = run_relative(store, plan, spec=spec, options=options)
    finally:
        status = "interrupted" if summary is None else ("done" if summary.complete else "incomplete")
        store.finish_run(run_id, status, summary.to_dict() if summary else None)
    print(format_relative(summary, spec))
    return (0 if summary.complete else 1), summary.to_dict()


def format_relative(summary: RelativeSummary, spec: JudgeSpec) -> str:
    text = (
        f"judge {spec.judge_id} (relative): {summary.already_stored + summary.new}/{summary.planned} relative "
        f"judgments stored ({summary.new} new, {summary.already_stored} already stored, {summary.invalid} invalid), "
        f"{summary.requests} calls, ${summary.cost_usd:.4f}"
    )
    if summary.failed:
        text += f"\n{summary.failed} calls failed after their retries (first: {summary.errors[0]}); run again"
    if summary.not_started:
        text += f"\nstopped by the budget: {summary.not_started} calls not started; raise --budget-usd and rerun"
    return text

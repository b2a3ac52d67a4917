"""``qlora-eval judge``: judge the stored answers of some models pairwise, in both orders.

Examples::

    qlora-eval judge --db qlora-eval.db --models guanaco-7b vicuna-13b --prompts vicuna --judge openai:gpt-4 \\
        --dry-run
    qlora-eval judge --db qlora-eval.db --models a b c --judge openai:gpt-4 --budget-usd 5 --json judge.json
    qlora-eval judge --db qlora-eval.db --models a b --judge local:smollm2-135m

Calls already stored are never paid for again; a killed run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from qlora_eval.errors import ConfigError, InputError
from qlora_eval.judge.openai_judge import RetryPolicy
from qlora_eval.judge.plan import PAIRINGS, JudgePlan, latest_answers
from qlora_eval.judge.runner import JudgeRunSummary
from qlora_eval.judge.session import Estimate, JudgeOptions, estimate, judge, plan
from qlora_eval.judge.spec import DEFAULT_JUDGE, JudgeSpec, parse_judge_spec
from qlora_eval.store import DEFAULT_DB, Store
from qlora_eval.types import Prompt


def add_judge_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``judge`` and ``tournament``; unset ones are None (the defaults or the config apply)."""
    group = parser.add_argument_group("judge")
    group.add_argument(
        "--judge",
        default=None,
        help=f"openai:MODEL[?base_url=URL] (key from OPENAI_API_KEY) or local:MODEL_SPEC (default {DEFAULT_JUDGE})",
    )
    group.add_argument("--pairs", choices=PAIRINGS, default=None, help="which model pairs meet (default all)")
    group.add_argument("--concurrency", type=int, default=None, help="openai judge calls in flight (default 4)")
    group.add_argument("--budget-usd", type=float, default=None, help="stop before spending more than this")
    group.add_argument("--dry-run", action="store_true", help="print the calls and estimated cost; spend nothing")
    group.add_argument("--temperature", type=float, default=None, help="judge temperature (default 0)")
    group.add_argument("--max-tokens", type=int, default=None, help="judge reply token limit (default 1024)")
    group.add_argument("--prices", type=Path, default=None, help="YAML price table on top of the shipped one")
    group.add_argument("--max-attempts", type=int, default=None, help="calls per judgment before failing (6)")
    group.add_argument("--timeout-s", type=float, default=None, help="seconds one judge call may take (120)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=Path(DEFAULT_DB), help=f"the store (default {DEFAULT_DB})")
    parser.add_argument("--models", nargs="+", required=True, metavar="MODEL", help="model names in the store")
    parser.add_argument(
        "--prompts", default=None, help="prompt set name (default: the one set the models' answers share)"
    )
    add_judge_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the retry jitter")
    parser.add_argument("--json", type=Path, default=None, help="write the run's figures as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def options_from_args(args: argparse.Namespace) -> JudgeOptions:
    """JudgeOptions from the shared judge options (unset ones keep their defaults)."""
    base = JudgeOptions()
    retry = RetryPolicy(
        max_attempts=args.max_attempts if args.max_attempts is not None else base.retry.max_attempts,
        timeout_s=args.timeout_s if args.timeout_s is not None else base.retry.timeout_s,
    )
    return JudgeOptions(
        temperature=args.temperature if args.temperature is not None else base.temperature,
        max_tokens=args.max_tokens if args.max_tokens is not None else base.max_tokens,
        concurrency=args.concurrency if args.concurrency is not None else base.concurrency,
        budget_usd=args.budget_usd,
        prices_path=args.prices,
        retry=retry,
        seed=getattr(args, "seed", base.seed),
        pairs=args.pairs or base.pairs,
    )


def run(args: argparse.Namespace) -> int:
    spec = parse_judge_spec(args.judge or DEFAULT_JUDGE)
    options = options_from_args(args)
    if args.prices is not None and not args.prices.is_file():
        raise ConfigError(f"--prices {args.prices}: no such file")
    if not args.db.is_file():
        raise InputError(f"--db {args.db}: no such store; generate answers first (qlora-eval generate)")
    with Store(args.db) as store:
        prompts = _prompts(store, args.models, args.prompts)
        answers = latest_answers(store.answers(models=args.models, prompt_set=prompts[0].prompt_set), prompts)
        job = plan(store, spec=spec, options=options, prompts=prompts, answers=answers, models=args.models)
        _warn_missing(job)
        if args.dry_run:
            est = estimate(job, spec, options)
            print(format_estimate(est, job, spec))
            if args.json:
                _write_json(args.json, {"dry_run": True, **estimate_dict(est, job)})
            return 0
        config = {"judge": spec.text, "models": sorted(args.models), "prompts": prompts[0].prompt_set}
        run_id = store.start_run("judge", config)
        summary: JudgeRunSummary | None = None
        try:
            summary = judge(store, job, spec=spec, options=options, run_id=run_id, progress=not args.no_progress)
        finally:
            status = "interrupted" if summary is None else ("done" if complete(summary) else "incomplete")
            store.finish_run(run_id, status, summary.to_dict() if summary else None)
    print(format_summary(summary, spec))
    if args.json:
        _write_json(args.json, summary.to_dict())
    return 0 if complete(summary) else 1


def complete(summary: JudgeRunSummary) -> bool:
    return summary.failed == 0 and summary.not_started == 0


def format_estimate(est: Estimate, job: JudgePlan, spec: JudgeSpec) -> str:
    """The dry-run lines."""
    lines = [
        f"judge {spec.judge_id}: {job.total} judgments planned, {len(job.stored_keys)} already stored, "
        f"{est.calls} calls to make (re-asks of unparsable replies come on top)",
        f"estimated tokens: ~{est.prompt_tokens} prompt (characters / 4), at most {est.max_completion_tokens} "
        "completion",
    ]
    if est.priced:
        lines.append(f"estimated cost: ${est.cost_usd:.4f} (upper bound: every reply at --max-tokens)")
    else:
        lines.append(f"estimated cost: unknown: {spec.target!r} has no entry in the price table (--prices FILE)")
    return "\n".join(lines)


def estimate_dict(est: Estimate, job: JudgePlan) -> dict[str, Any]:
    return {
        "planned": job.total,
        "already_stored": len(job.stored_keys),
        "calls": est.calls,
        "estimated_prompt_tokens": est.prompt_tokens,
        "max_completion_tokens": est.max_completion_tokens,
        "estimated_cost_usd": round(est.cost_usd, 6) if est.priced else None,
    }


def format_summary(summary: JudgeRunSummary, spec: JudgeSpec) -> str:
    text = (
        f"judge {spec.judge_id}: {summary.judgments}/{summary.planned} judgments stored "
        f"({summary.new} new, {summary.already_stored} already stored, {summary.invalid} invalid), "
        f"{summary.requests} calls, {summary.reasked} re-asked, ${summary.cost_usd:.4f}"
    )
    if summary.failed:
        text += f"\n{summary.failed} judgments failed after their retries (recorded); run again to retry them"
    if summary.stopped_by_budget:
        text += f"\nstopped by the budget: {summary.not_started} calls not started; raise --budget-usd and rerun"
    return text


def _prompts(store: Store, models: list[str], name: str | None) -> list[Prompt]:
    if name is None:
        sets = sorted({a.prompt_set for a in store.answers(models=models)})
        if len(sets) != 1:
            found = ", ".join(sets) if sets else "none"
            raise ConfigError(
                f"cannot tell which prompt set to judge (answers of {models} found for: {found}); pass --prompts NAME"
            )
        name = sets[0]
    prompts = store.prompts(name)
    if not prompts:
        raise InputError(f"the store has no prompts of set {name!r}; generate answers first (qlora-eval generate)")
    return prompts


def _warn_missing(job: JudgePlan) -> None:
    if not job.missing_answers:
        return
    shown = ", ".join(f"{m}/{p}" for m, p in job.missing_answers[:5])
    more = f" and {len(job.missing_answers) - 5} more" if len(job.missing_answers) > 5 else ""
    print(
        f"warning: {len(job.missing_answers)} answers missing ({shown}{more}); their battles are left out",
        file=sys.stderr,
    )


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")

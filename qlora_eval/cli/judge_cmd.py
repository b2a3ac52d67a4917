"""``qlora-eval judge``: judge the stored answers of some models pairwise, in both orders.

Examples::

    qlora-eval judge --db qlora-eval.db --models guanaco-7b vicuna-13b --prompts vicuna --judge openai:gpt-4 \\
        --dry-run
    qlora-eval judge --db qlora-eval.db --models a b c --judge openai:gpt-4 --budget-usd 5 --json judge.json
    qlora-eval judge --db qlora-eval.db --models a b --judge local:smollm2-135m
    qlora-eval judge --db qlora-eval.db --models a b c --judge openai:gpt-4o --batch   # Batch API, half price
    qlora-eval judge --db qlora-eval.db --batch-status                                # collect ended batches
    qlora-eval judge --db paper.db --models guanaco-7b answer-gpt35 --judge openai:gpt-4 \\
        --judge-templates qlora-paper --reuse-imported gpt-4 --dry-run   # imported GPT-4 verdicts count as done
    qlora-eval judge --db paper.db --models guanaco-7b answer-gpt35 --protocol relative --reference answer-gpt35

Calls already stored are never paid for again; a killed run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from qlora_eval.cli import judge_batch, judge_relative
from qlora_eval.cli.options import add_judge_options, estimate_dict, format_estimate, options_from_args
from qlora_eval.errors import ConfigError, InputError, unknown_names_error
from qlora_eval.judge.plan import JudgePlan, latest_answers
from qlora_eval.judge.runner import JudgeRunSummary
from qlora_eval.judge.session import estimate, judge, plan
from qlora_eval.judge.spec import DEFAULT_JUDGE, JudgeSpec, parse_judge_spec
from qlora_eval.judge.templates import PROTOCOLS
from qlora_eval.store import DEFAULT_DB, Store
from qlora_eval.types import Prompt


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=Path(DEFAULT_DB), help=f"the store (default {DEFAULT_DB})")
    parser.add_argument("--models", nargs="+", metavar="MODEL", help="model names in the store (required)")
    parser.add_argument(
        "--prompts", default=None, help="prompt set name (default: the one set the models' answers share)"
    )
    add_judge_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the retry jitter")
    parser.add_argument("--json", type=Path, default=None, help="write the run's figures as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="pairwise",
        help="pairwise (1/2/3 verdicts, default) or relative (two 1-10 scores vs --reference, both orders)",
    )
    parser.add_argument("--reference", default=None, metavar="MODEL", help="relative: the model scores are a %% of")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="folder with the paper's judge prompt files (qlora-paper, offline)"
    )
    parser.add_argument(
        "--batch-status", action="store_true", help="poll open Batch API batches, store what ended; submit nothing"
    )


def run(args: argparse.Namespace) -> int:
    spec = parse_judge_spec(args.judge or DEFAULT_JUDGE)
    options = options_from_args(args)
    if args.prices is not None and not args.prices.is_file():
        raise ConfigError(f"--prices {args.prices}: no such file")
    if not args.db.is_file():
        raise InputError(f"--db {args.db}: no such store; generate answers first (qlora-eval generate)")
    if args.batch_status:
        polled = judge_batch.status_only(args.db, options)
        print(judge_batch.format_batch(polled, None))
        if args.json:
            _write_json(args.json, polled.to_dict())
        return 0
    if not args.models:
        raise ConfigError("judge needs --models MODEL [MODEL ...] (only --batch-status runs without)")
    with Store(args.db) as store:
        _check_models(store, args.models)
        prompts = _prompts(store, args.models, args.prompts)
        answers = latest_answers(store.answers(models=args.models, prompt_set=prompts[0].prompt_set), prompts)
        if args.protocol == "relative":
            if options.batch:
                raise ConfigError("--batch judges with --protocol pairwise only; drop --batch for relative scores")
            code, figures = judge_relative.plan_and_run(store, args, spec, options, prompts, answers)
            if args.json:
                _write_json(args.json, figures)
            return code
        job = plan(store, spec=spec, options=options, prompts=prompts, answers=answers, models=args.models)
        _warn_missing(job)
        if args.dry_run:
            est = estimate(job, spec, options)
            print(format_estimate(est, job, spec))
            if args.json:
                _write_json(args.json, {"dry_run": True, "batch": options.batch, **estimate_dict(est, job)})
            return 0
        if options.batch:
            batch = judge_batch.submit_and_collect(store, job, spec, options)
            print(judge_batch.format_batch(batch, spec))
            if args.json:
                _write_json(args.json, batch.to_dict())
            return 0 if batch.complete else 1
        config = {"judge": spec.text, "models": sorted(args.models), "prompts": prompts[0].prompt_set}
        run_id = store.start_run("judge", config)
        summary: JudgeRunSummary | None = None
        try:
            summary = judge(store, job, spec=spec, options=options, run_id=run_id, progress=not args.no_progress)
        finally:
            status = "interrupted" if summary is None else ("done" if summary.complete else "incomplete")
            store.finish_run(run_id, status, summary.to_dict() if summary else None)
    print(format_summary(summary, spec))
    if args.json:
        _write_json(args.json, summary.to_dict())
    return 0 if summary.complete else 1


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


def _check_models(store: Store, models: list[str]) -> None:
    """A model name without stored answers is an error (a typo would otherwise plan zero calls)."""
    found = {a.model for a in store.answers(models=models)}
    unknown = [m for m in models if m not in found]
    if unknown:
        known = {a.model for a in store.answers()}
        raise unknown_names_error(
            "model", unknown, known, "Names are those of stored answers (qlora-eval generate / import)"
        )


def _prompts(store: Store, models: list[str], name: str | None) -> list[Prompt]:
    name = name if name is not None else store.default_prompt_set(models)
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

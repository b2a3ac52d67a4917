"""``qlora-eval tournament``: generate missing answers, judge every pair in both orders, rate, report.

Examples::

    qlora-eval tournament --config tournaments/demo.yaml          # offline, no API key
    qlora-eval tournament --models smollm2-135m 'smollm2-135m?bits=4&name=smollm2-nf4' --prompts demo \\
        --judge local:smollm2-135m --db reports/mine.db --html reports/mine.html

The work is :func:`qlora_eval.workflows.tournament.run_tournament` (resumable: stored answers and judgments
are reused); this module turns the options into a config, calls it and prints.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from qlora_eval.cli.fit_args import add_fit_arguments, rating_config_from_args
from qlora_eval.cli.leaderboard import format_leaderboard
from qlora_eval.cli.options import add_judge_options, format_estimate
from qlora_eval.config import Contestant, JudgeConfig, PromptsConfig, TournamentConfig, load_tournament_config
from qlora_eval.errors import ConfigError
from qlora_eval.judge.session import JudgeOptions
from qlora_eval.judge.spec import DEFAULT_JUDGE
from qlora_eval.types import GenerationSettings
from qlora_eval.workflows.tournament import dry_run, judge_options, run_tournament


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="tournament YAML (e.g. tournaments/demo.yaml)")
    parser.add_argument("--models", nargs="+", default=None, metavar="SPEC", help="contestants (replace the config's)")
    parser.add_argument("--prompts", default=None, help="prompt set name or file (replaces the config's)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding the vicuna/oa prompt files")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="answer length limit for every model")
    parser.add_argument("--db", type=Path, default=None, help="the store (default from the config, else qlora-eval.db)")
    parser.add_argument("--html", type=Path, default=None, help="write the HTML report here")
    parser.add_argument("--json", type=Path, default=None, help="write the rankings as JSON here")
    parser.add_argument("--rounds", type=int, default=None, help="Elo orderings and BT bootstrap rounds")
    parser.add_argument("--seed", type=int, default=None, help="seed of ratings and retry jitter")
    add_judge_options(parser)
    add_fit_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> TournamentConfig:
    """The config file (if any) with the command-line options on top."""
    if args.config is not None:
        config = load_tournament_config(args.config)
    elif args.models is None:
        raise ConfigError(
            "give --config tournaments/NAME.yaml or --models SPEC SPEC ... (try: qlora-eval tournament "
            "--config tournaments/demo.yaml)"
        )
    else:
        config = TournamentConfig(
            models=tuple(Contestant(m, GenerationSettings(), f"--models[{i}]") for i, m in enumerate(args.models)),
            prompts=PromptsConfig(name="demo"),
            judge=JudgeConfig(spec=DEFAULT_JUDGE),
        )
    changes: dict[str, Any] = {}
    if args.models is not None and args.config is not None:
        changes["models"] = tuple(Contestant(m, config.sampling, f"--models[{i}]") for i, m in enumerate(args.models))
    if args.prompts is not None or args.limit is not None or args.data_dir is not None:
        changes["prompts"] = PromptsConfig(
            name=args.prompts or config.prompts.name,
            data_dir=args.data_dir or config.prompts.data_dir,
            limit=args.limit if args.limit is not None else config.prompts.limit,
        )
    if args.max_new_tokens is not None:
        models = changes.get("models", config.models)
        changes["models"] = tuple(
            Contestant(m.spec, _with(m.sampling, max_new_tokens=args.max_new_tokens), m.where) for m in models
        )
    judge = config.judge
    judge_flags = (
        args.judge, args.temperature, args.max_tokens, args.batch, args.judge_templates, args.reuse_imported,
        args.retry_invalid, args.judge_template_dir, args.local_batch_size,
    )  # fmt: skip
    if any(flag is not None for flag in judge_flags):
        changes["judge"] = JudgeConfig(
            spec=args.judge or judge.spec,
            temperature=args.temperature if args.temperature is not None else judge.temperature,
            max_tokens=args.max_tokens if args.max_tokens is not None else judge.max_tokens,
            batch=bool(args.batch) or judge.batch,
            templates=args.judge_templates or judge.templates,
            reuse_imported=args.reuse_imported or judge.reuse_imported,
            retry_invalid=bool(args.retry_invalid) or judge.retry_invalid,
            template_dir=args.judge_template_dir or judge.template_dir,
            local_batch_size=args.local_batch_size if args.local_batch_size is not None else judge.local_batch_size,
        )
    rating = rating_config_from_args(args, config.rating)
    if rating is not None:
        changes["rating"] = rating
    for key in ("db", "html", "json", "rounds", "seed", "concurrency", "budget_usd", "pairs"):
        value = getattr(args, key)
        if value is not None:
            changes[key] = value
    return config.with_overrides(**changes) if changes else config


def _with(settings: GenerationSettings, **changes: Any) -> GenerationSettings:
    return GenerationSettings(**{**settings.to_dict(), **changes})


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    options = judge_options(config, prices_path=args.prices, max_attempts=args.max_attempts, timeout_s=args.timeout_s)
    if args.dry_run:
        return _dry_run(config, options)
    result = run_tournament(
        config,
        options=options,
        progress=not args.no_progress,
        command=shlex.join(["qlora-eval", *sys.argv[1:]]) if sys.argv else "qlora-eval tournament",
        on_estimate=lambda est, plan, spec: print(format_estimate(est, plan, spec), file=sys.stderr),
    )
    document = result.document
    if document is None:
        print(
            f"{result.judging.in_flight} judgments are in Batch API batches and none is back yet, so nothing was "
            f"rated; run the same command again later to collect them and rate (progress: qlora-eval judge --db "
            f"{config.db} --batch-status)",
            file=sys.stderr,
        )
        return 0
    print(format_leaderboard(document.elo) + "\n\n" + format_leaderboard(document.bt))
    print(f"wrote {config.html} and {config.json} ({result.seconds:.0f} s)", file=sys.stderr)
    return 0 if result.complete else 1


def _dry_run(config: TournamentConfig, options: JudgeOptions) -> int:
    """Print what the tournament would generate and judge, and (for a paid judge) an upper cost estimate."""
    plan = dry_run(config, options)
    print(
        f"tournament {plan.name}: {plan.models} models x {plan.prompts} prompts of {plan.prompt_set} = "
        f"{plan.models * plan.prompts} answers (stored ones are reused); {plan.pairs} pairs x 2 orders = "
        f"{plan.calls} judge calls by {plan.judge_id} at most (stored ones are not paid again)"
    )
    if plan.reused:
        print(f"reuse of imported verdicts saves {plan.reused} calls (judge.reuse_imported / --reuse-imported)")
    if plan.runs_locally:
        print("estimated cost: $0 (local judge)")
    elif not plan.estimate.priced:
        print(f"estimated cost: unknown: {plan.judge_target!r} has no entry in the price table (--prices FILE)")
    else:
        cost = plan.estimate.cost_usd
        print(f"estimated cost: at most ${cost:.4f} (answers at max_new_tokens, replies at --max-tokens)")
    return 0

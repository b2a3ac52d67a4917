"""``qlora-eval place``: add a model to a leaderboard by judging it against a few rivals, not all of them.

Examples::

    qlora-eval place --db qlora-eval.db --model guanaco-7b-v2 --judge openai:gpt-4 --dry-run
    qlora-eval place --db qlora-eval.db --model guanaco-7b-v2 --judge openai:gpt-4 --rivals 3 --budget-usd 5 \\
        --json place.json --html place.html

The work is :func:`qlora_eval.workflows.place.place`; this module parses, calls it and prints.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from qlora_eval.cli.adjustments import format_adjustments
from qlora_eval.cli.fit_args import add_fit_arguments, fit_command_parts, fit_from_args
from qlora_eval.cli.leaderboard import format_leaderboard
from qlora_eval.cli.options import add_judge_options, options_from_args
from qlora_eval.errors import ConfigError
from qlora_eval.judge.spec import DEFAULT_JUDGE
from qlora_eval.store import DEFAULT_DB
from qlora_eval.workflows.place import DryRun, PlaceRequest, place


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=Path(DEFAULT_DB), help=f"the store (default {DEFAULT_DB})")
    parser.add_argument("--model", required=True, help="the new model (its answers must be stored)")
    parser.add_argument("--prompts", default=None, help="prompt set (default: the one set the model answered)")
    parser.add_argument("--rivals", type=int, default=3, help="most rivals to judge against (default 3)")
    parser.add_argument("--method", choices=["bt", "elo"], default="bt", help="rating method of the fits (default bt)")
    parser.add_argument("--rounds", type=int, default=None, help="bootstrap rounds / orderings of the final fit")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fits and the retry jitter (default 0)")
    parser.add_argument("--json", type=Path, default=None, help="write the rank document plus 'placement' here")
    parser.add_argument("--html", type=Path, default=None, help="write the HTML report here")
    add_judge_options(parser)
    add_fit_arguments(parser)


def command_line(args: argparse.Namespace) -> str:
    """The command as typed (rebuilt from the options)."""
    parts = ["qlora-eval", "place", "--db", str(args.db), "--model", args.model, "--rivals", str(args.rivals)]
    for flag in ("prompts", "judge", "method", "rounds", "budget_usd", "json", "html"):
        value = getattr(args, flag)
        if value is not None:
            parts += [f"--{flag.replace('_', '-')}", str(value)]
    return shlex.join([*parts, "--seed", str(args.seed), *fit_command_parts(args)])


def format_dry_run(dry: DryRun, rivals: int) -> str:
    lines = [
        f"first rival: {dry.first_rival} (nearest the middle of the board); calls per rival still to make:",
        *(f"  {rival}: {calls}" for rival, calls in sorted(dry.calls_per_rival.items())),
        f"at most {dry.max_calls} calls for {rivals} rivals, against {dry.round_robin_calls} for a full round robin",
    ]
    if dry.estimate.priced:
        lines.append(f"estimated cost: at most ${dry.estimate.cost_usd:.4f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.batch:
        raise ConfigError(
            "place chooses each rival from the verdicts on the last one, so it cannot wait for the Batch API; "
            "drop --batch (or judge the rivals yourself: qlora-eval judge --batch --models NEW RIVAL)"
        )
    for option in ("json", "html"):
        target = getattr(args, option)
        if target is not None and not Path(target).resolve().parent.is_dir():
            raise ConfigError(f"the folder of --{option} {target} does not exist; create it first")
    request = PlaceRequest(
        db=args.db,
        model=args.model,
        judge=args.judge or DEFAULT_JUDGE,
        prompts=args.prompts,
        rivals=args.rivals,
        method=args.method,
        rounds=args.rounds,
        seed=args.seed,
        fit=fit_from_args(args),
        options=options_from_args(args),
        dry_run=args.dry_run,
        command=command_line(args),
    )
    outcome = place(request)
    if outcome.dry_run is not None:
        print(format_dry_run(outcome.dry_run, args.rivals))
        return 0
    assert outcome.placement is not None and outcome.document is not None and outcome.result is not None
    placement = outcome.placement
    print(format_leaderboard(outcome.document.ranking))
    adjustments = format_adjustments(outcome.document.ranking)
    if adjustments:
        print(adjustments)
    print(
        f"placed {placement.model} against {len(placement.rivals)} rival(s) ({', '.join(placement.rivals)}): "
        f"{placement.calls} judge calls this run, against {placement.round_robin_calls} for a full round robin "
        f"(stopped: {placement.stopped})"
    )
    if args.json is not None:
        args.json.write_text(outcome.document.dumps(), encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.html is not None:
        from qlora_eval.workflows.rank import RankOutcome, RankRequest, rank_report_html

        rank_outcome = RankOutcome(outcome.document, outcome.result, ())
        html = rank_report_html(rank_outcome, RankRequest(db=args.db), title=f"Placing {placement.model}")
        args.html.write_text(html, encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    return 0 if placement.stopped != "budget" else 1

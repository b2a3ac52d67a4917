"""``qlora-eval rank``: rank models from verdict files (no store needed) or from the store.

The work is :func:`qlora_eval.workflows.rank.rank`; this module parses the options, calls it and prints.
Imports stay light (no report, no matplotlib) unless ``--html`` is given.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from qlora_eval.cli.adjustments import format_adjustments
from qlora_eval.cli.fit_args import add_fit_arguments, fit_command_parts, fit_from_args
from qlora_eval.cli.leaderboard import format_leaderboard
from qlora_eval.errors import ConfigError
from qlora_eval.interchange import FORMATS
from qlora_eval.workflows.rank import RankRequest, rank, rank_report_html
from qlora_eval.workflows.relative import RelativeRequest, format_relative, relative_rank


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="verdict files or folders (or use --db)")
    parser.add_argument("--format", choices=sorted(FORMATS), default=None, help="format of INPUT files")
    parser.add_argument("--db", default=None, help="rank the judgments in this store instead of files")
    parser.add_argument("--prompt-set", default=None, help="files: the prompt set they belong to; store: only this set")
    parser.add_argument("--reviewer", default="gpt-4", help="qlora format: reviewer named in the file names")
    parser.add_argument("--judge", action="append", default=None, help="only verdicts of this judge (repeatable)")
    parser.add_argument("--models", nargs="+", default=None, help="only battles between these models")
    parser.add_argument(
        "--method",
        choices=["elo", "bt", "relative"],
        default="elo",
        help="Elo over orderings, Bradley-Terry, or relative (score as %% of --reference; needs --db)",
    )
    parser.add_argument("--reference", default=None, metavar="MODEL", help="relative: the model scores are a %% of")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="Elo orderings (default 10000) or BT/relative bootstrap rounds (default 1000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the orderings / bootstrap (default 0)")
    parser.add_argument("--json", default=None, metavar="PATH", help="write the ranking as JSON (what check reads)")
    parser.add_argument("--html", default=None, metavar="PATH", help="write the HTML report")
    parser.add_argument("--title", default=None, help="title of the HTML report")
    add_fit_arguments(parser)


def command_line(args: argparse.Namespace) -> str:
    """The command as a user would type it again (rebuilt from the options, so it is the same in tests)."""
    parts = ["qlora-eval", "rank", *args.inputs]
    for flag in ("format", "db", "prompt_set", "method", "reference", "rounds", "seed", "json", "html", "title"):
        value = getattr(args, flag)
        if value is not None:
            parts += [f"--{flag.replace('_', '-')}", str(value)]
    if args.format == "qlora":
        parts += ["--reviewer", args.reviewer]
    for judge in args.judge or []:
        parts += ["--judge", judge]
    if args.models:
        parts += ["--models", *args.models]
    return shlex.join(parts + fit_command_parts(args))


def request_from_args(args: argparse.Namespace) -> RankRequest:
    """The workflow's request from the parsed options."""
    return RankRequest(
        inputs=tuple(args.inputs),
        format=args.format,
        db=Path(args.db) if args.db is not None else None,
        prompt_set=args.prompt_set,
        reviewer=args.reviewer,
        judges=tuple(args.judge) if args.judge is not None else None,
        models=tuple(args.models) if args.models is not None else None,
        method=args.method,
        rounds=args.rounds,
        seed=args.seed,
        command=command_line(args),
        fit=fit_from_args(args),
    )


def run_relative(args: argparse.Namespace) -> int:
    """``rank --method relative``: each model's score as a percentage of ``--reference``'s (store only)."""
    if args.reference is None:
        raise ConfigError("--method relative needs --reference MODEL (e.g. --reference answer-gpt35)")
    if fit_command_parts(args):
        raise ConfigError(
            f"{' '.join(fit_command_parts(args)[::2])} apply to --method elo or bt, not to --method relative; drop them"
        )
    if args.db is None or args.inputs:
        raise ConfigError(
            "--method relative reads a store: the relative reviews name answers by id, so import the generation "
            "files (--format qlora-generations) and then the reviews (--format qlora-relative) into one --db"
        )
    for option in ("json", "html"):
        target = getattr(args, option)
        if target is not None and not Path(target).resolve().parent.is_dir():
            raise ConfigError(f"the folder of --{option} {target} does not exist; create it first")
    request = RelativeRequest(
        db=Path(args.db),
        reference=args.reference,
        prompt_set=args.prompt_set,
        judges=tuple(args.judge) if args.judge is not None else None,
        models=tuple(args.models) if args.models is not None else None,
        rounds=args.rounds,
        seed=args.seed,
        command=command_line(args),
    )
    document = relative_rank(request)
    print(format_relative(document))
    if args.json is not None:
        Path(args.json).write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.html is not None:
        from qlora_eval.report.relative import relative_report_html

        Path(args.html).write_text(relative_report_html(document, title=args.title), encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.method == "relative":
        return run_relative(args)
    if args.reference is not None:
        raise ConfigError("--reference applies to --method relative only")
    request = request_from_args(args)
    request.check()
    for option in ("json", "html"):
        target = getattr(args, option)
        if target is not None and not Path(target).resolve().parent.is_dir():
            raise ConfigError(f"the folder of --{option} {target} does not exist; create it first")
    outcome = rank(request)
    print(format_leaderboard(outcome.document.ranking))
    adjustments = format_adjustments(outcome.document.ranking)
    if adjustments:
        print(adjustments)
    if args.json is not None:
        Path(args.json).write_text(outcome.document.dumps(), encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.html is not None:
        Path(args.html).write_text(rank_report_html(outcome, request, title=args.title), encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    return 0

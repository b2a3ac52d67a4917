"""``qlora-eval check``: the CI gate. Compare two ``rank --json`` documents and fail on a real regression.

The rule is :mod:`qlora_eval.workflows.check`'s: a model regresses when its rating drops by more than
``--max-drop`` points and the candidate's whole 95% interval lies below the baseline's.

Exit codes: 0 no regression, 1 at least one model regressed or a baseline model is missing from the candidate
(``--allow-missing`` reports it instead), 2 the files cannot be read or compared (an unreadable input is always 2,
never 1; rankings of different prompt sets or judges are refused unless ``--allow-different``).
A Markdown summary goes to standard output, and with ``--summary FILE`` is appended to FILE
(pass ``$GITHUB_STEP_SUMMARY`` on GitHub Actions).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qlora_eval.errors import InputError
from qlora_eval.workflows.check import check, load_rank_document, summary_markdown, validate_max_drop
from qlora_eval.workflows.relative_check import check_relative, is_relative, load_json, relative_summary_markdown


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", required=True, help="rank --json output of the accepted version")
    parser.add_argument("--candidate", required=True, help="rank --json output of the version under test")
    parser.add_argument("--max-drop", type=float, required=True, metavar="POINTS", help="allowed rating drop")
    parser.add_argument("--summary", default=None, metavar="FILE", help="also append the Markdown summary to FILE")
    parser.add_argument(
        "--allow-missing",
        action="store_true",
        help="report a baseline model missing from the candidate instead of failing (exit 1) on it",
    )
    parser.add_argument(
        "--allow-different",
        action="store_true",
        help="compare rankings of different prompt sets or judges (refused with exit 2 otherwise)",
    )
    parser.add_argument(
        "--fail-on-missing", action="store_true", help="the default now (kept so older CI scripts still run)"
    )


def run(args: argparse.Namespace) -> int:
    validate_max_drop(args.max_drop)  # a usage error before any file is read
    allow = {"allow_missing": args.allow_missing, "allow_different": args.allow_different}
    raw = load_json(args.baseline)
    if is_relative(raw):  # rank --method relative documents: the same rule on the percentages
        candidate_raw = load_json(args.candidate)
        relative = check_relative(raw, candidate_raw, max_drop=args.max_drop, source=args.candidate, **allow)
        _emit(relative_summary_markdown(relative, args.max_drop), args.summary)
        return 1 if relative.failed else 0
    baseline = load_rank_document(args.baseline)
    candidate = load_rank_document(args.candidate)
    result = check(baseline, candidate, max_drop=args.max_drop, candidate_source=args.candidate, **allow)
    _emit(summary_markdown(result), args.summary)
    return 1 if result.failed else 0


def _emit(text: str, summary: str | None) -> None:
    print(text, end="")
    if summary is not None:
        try:
            with Path(summary).open("a", encoding="utf-8") as handle:
                handle.write(text + "\n")
        except OSError as exc:  # exit 2 (cannot do the job), never the traceback's 1 that reads as "regressed"
            raise InputError(f"cannot append the summary ({exc.strerror or exc})", source=summary) from exc

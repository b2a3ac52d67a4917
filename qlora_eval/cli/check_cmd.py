"""``qlora-eval check``: the CI gate. Compare two ``rank --json`` documents and fail on a real regression.

The rule is :mod:`qlora_eval.workflows.check`'s: a model regresses when its rating drops by more than
``--max-drop`` points and the candidate's whole 95% interval lies below the baseline's.

Exit codes: 0 no regression, 1 at least one model regressed (or, with ``--fail-on-missing``, a baseline model
is missing from the candidate), 2 the files cannot be read or compared. A Markdown summary goes to standard
output, and with ``--summary FILE`` is appended to FILE (pass ``$GITHUB_STEP_SUMMARY`` on GitHub Actions).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qlora_eval.workflows.check import check, summary_markdown, validate_max_drop
from qlora_eval.workflows.document import RankDocument
from qlora_eval.workflows.relative_check import check_relative, is_relative, load_json, relative_summary_markdown


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", required=True, help="rank --json output of the accepted version")
    parser.add_argument("--candidate", required=True, help="rank --json output of the version under test")
    parser.add_argument("--max-drop", type=float, required=True, metavar="POINTS", help="allowed rating drop")
    parser.add_argument("--summary", default=None, metavar="FILE", help="also append the Markdown summary to FILE")
    parser.add_argument(
        "--fail-on-missing", action="store_true", help="exit 1 when a baseline model is missing from the candidate"
    )


def run(args: argparse.Namespace) -> int:
    validate_max_drop(args.max_drop)  # a usage error before any file is read
    raw = load_json(args.baseline)
    if is_relative(raw):  # rank --method relative documents: the same rule on the percentages
        relative = check_relative(
            raw, load_json(args.candidate), max_drop=args.max_drop, fail_on_missing=args.fail_on_missing,
            source=args.candidate,
        )  # fmt: skip
        _emit(relative_summary_markdown(relative, args.max_drop), args.summary)
        return 1 if relative.failed else 0
    baseline = RankDocument.load(args.baseline)
    candidate = RankDocument.load(args.candidate)
    result = check(
        baseline,
        candidate,
        max_drop=args.max_drop,
        fail_on_missing=args.fail_on_missing,
        candidate_source=args.candidate,
    )
    _emit(summary_markdown(result), args.summary)
    return 1 if result.failed else 0


def _emit(text: str, summary: str | None) -> None:
    print(text, end="")
    if summary is not None:
        with Path(summary).open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")

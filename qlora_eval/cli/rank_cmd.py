"""``qlora-eval rank``: rank models from verdict files (no store needed) or from the store.

Imports stay light on purpose (numpy and the rating engine only): the report, and with it matplotlib and
Jinja2, is imported only when ``--html`` is given, so a plain ranking starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qlora_eval import __version__
from qlora_eval.cli.diagnostics import diagnostics_document
from qlora_eval.errors import ConfigError, InputError
from qlora_eval.interchange import FORMATS, ImportOptions, read_inputs
from qlora_eval.types import Judgment, content_key, utc_now

if TYPE_CHECKING:
    from qlora_eval.report.data import ReportSection  # importing the report loads matplotlib: only when --html


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="verdict files or folders (or use --db)")
    parser.add_argument("--format", choices=sorted(FORMATS), default=None, help="format of INPUT files")
    parser.add_argument("--db", default=None, help="rank the judgments in this store instead of files")
    parser.add_argument("--prompt-set", default=None, help="files: the prompt set they belong to; store: only this set")
    parser.add_argument("--reviewer", default="gpt-4", help="qlora format: reviewer named in the file names")
    parser.add_argument("--judge", action="append", default=None, help="only verdicts of this judge (repeatable)")
    parser.add_argument("--models", nargs="+", default=None, help="only battles between these models")
    parser.add_argument("--method", choices=["elo", "bt"], default="elo", help="Elo over orderings or Bradley-Terry")
    parser.add_argument(
        "--rounds", type=int, default=None, help="Elo orderings (default 10000) or BT bootstrap rounds (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the orderings / bootstrap (default 0)")
    parser.add_argument("--json", default=None, metavar="PATH", help="write the ranking as JSON (what check reads)")
    parser.add_argument("--html", default=None, metavar="PATH", help="write the HTML report")
    parser.add_argument("--title", default=None, help="title of the HTML report")


def _load_files(args: argparse.Namespace) -> tuple[list[Judgment], list[dict[str, Any]]]:
    if args.format is None:
        raise ConfigError(f"rank INPUT... needs --format ({', '.join(FORMATS)})")
    batch = read_inputs(args.inputs, args.format, ImportOptions(prompt_set=args.prompt_set, reviewer=args.reviewer))
    if batch.answers and not batch.judgments:
        raise InputError("the input holds answers only; rank needs verdicts (judge the answers first)")
    judgments = list(batch.judgments)
    if args.prompt_set is not None and FORMATS[args.format].default_prompt_set is None:
        judgments = [j for j in judgments if j.prompt_set == args.prompt_set]
    return judgments, [s.to_dict() for s in batch.sources]


def _load_store(args: argparse.Namespace) -> tuple[list[Judgment], list[dict[str, Any]]]:
    from qlora_eval.interchange.base import sha256_file
    from qlora_eval.store import Store

    path = Path(args.db)
    if not path.is_file():
        raise InputError(
            "no store here; pass --db PATH of an existing store (qlora-eval import creates one)", source=str(path)
        )
    with Store(path) as store:
        judgments = [s.judgment for s in store.judgments(prompt_set=args.prompt_set)]
    return judgments, [{"path": str(path), "sha256": sha256_file(path), "records": len(judgments)}]


def _answer_lengths(args: argparse.Namespace, judgments: Sequence[Judgment]) -> tuple[list[float], list[float]] | None:
    """Answer lengths for the length-preference statistic, when the store holds every judged answer."""
    from qlora_eval.cli.diagnostics import answer_length_table
    from qlora_eval.judge.diagnostics import answer_lengths
    from qlora_eval.store import Store

    with Store(Path(args.db)) as store:
        table = answer_length_table(store, judgments)
    return answer_lengths(judgments, table.get)


def stored_mmlu_sections(db: Path, models: Sequence[str]) -> tuple[ReportSection, ...]:
    """MMLU report sections for the ranked models that have MMLU results in the store (none: no sections)."""
    from qlora_eval.report.mmlu import latest_runs, mmlu_sections
    from qlora_eval.store import Store

    with Store(db) as store:
        rows = [(subject, payload) for _, subject, payload, _ in store.results("mmlu")]
    runs = latest_runs(rows, models)
    return mmlu_sections(runs) if runs else ()


def select(judgments: Sequence[Judgment], judges: Sequence[str] | None, models: Sequence[str] | None) -> list[Judgment]:
    """Keep the judgments of the given judges, between the given models (None keeps all).

    Raises:
        InputError: a judge or model that no judgment names (a typo would otherwise rank nothing).
    """
    if judges is not None:
        known = {j.judge for j in judgments}
        unknown = sorted(set(judges) - known)
        if unknown:
            raise InputError(f"no verdicts by judge(s) {', '.join(unknown)}; known judges: {', '.join(sorted(known))}")
        judgments = [j for j in judgments if j.judge in set(judges)]
    if models is not None:
        known = {j.model_a for j in judgments} | {j.model_b for j in judgments}
        unknown = sorted(set(models) - known)
        if unknown:
            raise InputError(f"no battles of model(s) {', '.join(unknown)}; known models: {', '.join(sorted(known))}")
        wanted = set(models)
        judgments = [j for j in judgments if j.model_a in wanted and j.model_b in wanted]
    if not judgments:
        raise InputError("no verdicts are left after the --judge/--models/--prompt-set filters")
    return list(judgments)


def verdicts_sha256(judgments: Sequence[Judgment]) -> str:
    """One hash of exactly the verdicts ranked (who, whom, which prompt, which order, what verdict).

    Independent of input order and of where the verdicts came from; one JSON dump instead of a content
    key per judgment keeps it cheap (rank must start and finish fast).
    """
    rows = sorted(
        (j.judge, j.model_a, j.model_b, j.prompt_set, j.prompt_id, j.order.value, j.verdict.value) for j in judgments
    )
    return content_key(rows)


def command_line(args: argparse.Namespace) -> str:
    """The command as a user would type it again (rebuilt from the options, so it is the same in tests)."""
    parts = ["qlora-eval", "rank", *args.inputs]
    for flag in ("format", "db", "prompt_set", "method", "rounds", "seed", "json", "html", "title"):
        value = getattr(args, flag)
        if value is not None:
            parts += [f"--{flag.replace('_', '-')}", str(value)]
    if args.format == "qlora":
        parts += ["--reviewer", args.reviewer]
    for judge in args.judge or []:
        parts += ["--judge", judge]
    if args.models:
        parts += ["--models", *args.models]
    return shlex.join(parts)


def format_leaderboard(document: dict[str, Any]) -> str:
    """The ranking as a plain-text table with a one-line summary and the position-bias figures."""
    method = "Elo" if document["method"] == "elo" else "Bradley-Terry"
    unit = "orderings" if document["method"] == "elo" else "bootstrap rounds"
    lines = [
        f"{method} ratings over {document['rounds']:,} {unit} of {document['battles']:,} battles "
        f"({document['invalid']:,} invalid verdicts not rated), seed {document['seed']}",
        "",
    ]
    rows = [("rank", "model", "rating", "95% interval", "se", "wins", "losses", "ties")]
    for m in document["models"]:
        best, worst = document["rank_ranges"][m["model"]]
        rank = str(best) if best == worst else f"{best}-{worst}"
        rows.append(
            (
                rank,
                m["model"],
                f"{m['rating']:.1f}",
                f"[{m['ci_low']:.1f}, {m['ci_high']:.1f}]",
                f"{m['se']:.1f}",
                str(m["wins"]),
                str(m["losses"]),
                str(m["ties"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [c.ljust(w) if i == 1 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    bias = document["bias"]
    lines.append("")
    if bias["first_win_rate"] is not None:
        low, high = bias["first_win_ci"]
        lines.append(
            f"position bias: the answer shown first won {100 * bias['first_win_rate']:.1f}% of "
            f"{bias['decisive']:,} decisive verdicts (95% CI {100 * low:.1f}-{100 * high:.1f}%; 50% = no bias)"
        )
    if bias["consistency"] is not None:
        lines.append(
            f"order swap: {100 * bias['consistency']:.1f}% of {bias['swap_pairs']:,} verdict pairs "
            "kept their verdict when the answers were shown the other way round"
        )
    if document["method"] == "elo":
        lines.append("interval: 2.5-97.5 percentiles over orderings; se: standard error of the mean rating")
    else:
        lines.append("interval: 2.5-97.5 percentiles over prompt bootstrap rounds; se: bootstrap standard deviation")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from qlora_eval.rating import DEFAULT_ROUNDS, RatingMethod, rank_battles

    if args.inputs and args.db is not None:
        raise ConfigError("give either INPUT files or --db, not both (import the files into the store first)")
    if not args.inputs and args.db is None:
        raise ConfigError("nothing to rank: give INPUT files with --format, or --db PATH")
    if args.db is not None and args.format is not None:
        raise ConfigError("--format applies to INPUT files; the store needs none")
    for option in ("json", "html"):
        target = getattr(args, option)
        if target is not None and not Path(target).resolve().parent.is_dir():
            raise ConfigError(f"the folder of --{option} {target} does not exist; create it first")
    method = RatingMethod(args.method)
    rounds = args.rounds if args.rounds is not None else DEFAULT_ROUNDS[method]
    judgments, inputs = _load_files(args) if args.inputs else _load_store(args)
    judgments = select(judgments, args.judge, args.models)
    battles = [j.to_battle() for j in judgments]
    lengths = _answer_lengths(args, judgments) if args.db is not None else None
    result = rank_battles(battles, method, rounds, np.random.default_rng(args.seed), answer_lengths=lengths)
    document = result.to_json_dict()
    document["diagnostics"] = diagnostics_document(result, judgments, seed=args.seed)
    document.update(
        {
            "seed": args.seed,
            "judges": sorted({j.judge for j in judgments}),
            "prompt_sets": sorted({j.prompt_set for j in judgments}),
            "inputs": inputs,
            # One hash of exactly the verdicts ranked, whatever files or store they came from.
            "data_sha256": verdicts_sha256(judgments),
            "command": command_line(args),
            "qlora_eval_version": __version__,
            "python_version": platform.python_version(),
            "numpy_version": np.__version__,
            "created_at": utc_now(),
        }
    )
    print(format_leaderboard(document))
    if args.json is not None:
        Path(args.json).write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.html is not None:
        from qlora_eval.report import ReportData, RunMetadata, build_report

        metadata = RunMetadata.from_rank_document(document)
        title = args.title or "Pairwise ranking"
        sections = stored_mmlu_sections(Path(args.db), [r.model for r in result.ratings]) if args.db else ()
        html = build_report(ReportData(title=title, ranking=result, metadata=metadata, sections=sections))
        Path(args.html).write_text(html, encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    return 0

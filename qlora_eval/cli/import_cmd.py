"""``qlora-eval import``: read verdict or answer files and store them, all or nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

from qlora_eval import paths
from qlora_eval.interchange import FORMATS, ImportOptions, parse_renames, read_inputs
from qlora_eval.interchange.votes import CONFLICT_POLICIES
from qlora_eval.store import DEFAULT_DB, Store
from qlora_eval.workflows.importing import store_imported


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="files or folders (a folder: its matching files)")
    parser.add_argument(
        "--format",
        required=True,
        choices=sorted(FORMATS),
        help="; ".join(f"{f.name}: {f.description}" for f in FORMATS.values()),
    )
    parser.add_argument("--db", default=DEFAULT_DB, help=f"the store file (default {DEFAULT_DB})")
    parser.add_argument(
        "--prompt-set",
        default=None,
        help="prompt set the records belong to (defaults: "
        + ", ".join(f"{f.name} {f.default_prompt_set}" for f in FORMATS.values() if f.default_prompt_set)
        + "; jsonl records carry their own)",
    )
    parser.add_argument(
        "--reviewer",
        default="gpt-4",
        help="qlora format: the reviewer named in the file names ...-<reviewer>-reviewer.jsonl (default gpt-4); "
        "qlora-relative: the judge of the reviews",
    )
    parser.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="give model OLD the name NEW (repeatable; any format), e.g. --rename answer-gpt35=chatgpt",
    )
    parser.add_argument(
        "--conflicts",
        choices=CONFLICT_POLICIES,
        default="stop",
        help="a machine verdict that differs from a stored one for the same call: stop (default: store nothing, "
        "name both places) or keep (store it as a repeated sample for judge-noise statistics)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="qlora-generations: folder holding the vicuna/oa prompt files (offline; default $QLORA_EVAL_DATA)",
    )


def run(args: argparse.Namespace) -> int:
    # Read and validate everything before opening the store: a bad line anywhere stores nothing.
    options = ImportOptions(
        prompt_set=args.prompt_set,
        reviewer=args.reviewer,
        data_dir=paths.data_dir(args.data_dir),
        renames=parse_renames(args.rename),
    )
    batch = read_inputs(args.inputs, args.format, options)
    with Store(args.db) as store:
        counts = store_imported(store, batch, conflicts=args.conflicts)
    files = len(batch.sources)
    print(f"read {batch.records} records from {files} file{'s' if files != 1 else ''} into {args.db}")
    if batch.judgments:
        samples = f", {counts.judgments_samples} kept as repeated samples" if counts.judgments_samples else ""
        print(f"judgments: {counts.judgments_new} new, {counts.judgments_duplicate} duplicate{samples}")
    if batch.answers:
        print(f"answers: {counts.answers_new} new, {counts.answers_duplicate} duplicate")
        print(f"prompts: {counts.prompts_new} new")
    if batch.relative:
        print(
            f"relative judgments: {counts.relative_new} new, {counts.relative_duplicate} duplicate, "
            f"{counts.relative_invalid} invalid (unparsable, counted, not scored)"
        )
    return 0

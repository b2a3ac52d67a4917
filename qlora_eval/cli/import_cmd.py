"""``qlora-eval import``: read verdict or answer files and store them, all or nothing."""

from __future__ import annotations

import argparse

from qlora_eval.interchange import FORMATS, ImportOptions, read_inputs
from qlora_eval.interchange.storing import store_imported
from qlora_eval.store import DEFAULT_DB, Store


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
        help="qlora format: the reviewer named in the file names ...-<reviewer>-reviewer.jsonl (default gpt-4)",
    )


def run(args: argparse.Namespace) -> int:
    # Read and validate everything before opening the store: a bad line anywhere stores nothing.
    batch = read_inputs(args.inputs, args.format, ImportOptions(prompt_set=args.prompt_set, reviewer=args.reviewer))
    with Store(args.db) as store:
        counts = store_imported(store, batch)
    files = len(batch.sources)
    print(f"read {batch.records} records from {files} file{'s' if files != 1 else ''} into {args.db}")
    if batch.judgments:
        print(f"judgments: {counts.judgments_new} new, {counts.judgments_duplicate} duplicate")
    if batch.answers:
        print(f"answers: {counts.answers_new} new, {counts.answers_duplicate} duplicate")
        print(f"prompts: {counts.prompts_new} new")
    return 0

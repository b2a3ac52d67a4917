"""``qlora-eval export``: write stored judgments or answers as JSONL or Arena battles."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from qlora_eval.errors import ConfigError, InputError
from qlora_eval.interchange import arena, jsonl
from qlora_eval.store import DEFAULT_DB, Store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=DEFAULT_DB, help=f"the store file (default {DEFAULT_DB})")
    parser.add_argument("--what", required=True, choices=["judgments", "answers"], help="which records")
    parser.add_argument(
        "--format",
        default="jsonl",
        choices=["jsonl", "arena"],
        help="jsonl: every field, re-importable exactly (default); arena: Chatbot Arena battle list (judgments only)",
    )
    parser.add_argument("--output", "-o", default=None, help="file to write (default: standard output)")
    parser.add_argument("--judge", action="append", default=None, help="only this judge (repeatable)")
    parser.add_argument("--prompt-set", default=None, help="only this prompt set")


@contextmanager
def _open_output(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    target = Path(path)
    if not target.parent.exists():
        raise InputError("the folder of --output does not exist; create it first", source=str(target))
    with target.open("w", encoding="utf-8") as handle:
        yield handle


def run(args: argparse.Namespace) -> int:
    if args.what == "answers" and args.format == "arena":
        raise ConfigError("the arena format holds battles only; export answers with --format jsonl")
    if not Path(args.db).is_file():
        raise InputError("no store here; pass --db PATH of an existing store", source=args.db)
    with Store(args.db) as store:
        if args.what == "answers":
            if args.judge:
                raise ConfigError("--judge applies to judgments only")
            records = store.answers(prompt_set=args.prompt_set)
            with _open_output(args.output) as out:
                written = jsonl.write_records(records, out)
            print(f"exported {written} answers", file=sys.stderr)
            return 0
        judgments = [s.judgment for s in store.judgments(judges=args.judge, prompt_set=args.prompt_set)]
    with _open_output(args.output) as out:
        if args.format == "jsonl":
            written = jsonl.write_records(judgments, out)
            print(f"exported {written} judgments", file=sys.stderr)
        else:
            written, skipped = arena.write_judgments(judgments, out)
            note = f"; left out {skipped} INVALID judgments (Arena has no invalid verdict)" if skipped else ""
            print(f"exported {written} battles{note}", file=sys.stderr)
    return 0

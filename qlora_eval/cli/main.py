"""``qlora-eval`` entry point.

Each sub-command lives in its own module ``qlora_eval.cli.<module>`` exposing
``add_arguments(parser)`` and ``run(args) -> int``. Only the chosen command's module is
imported, so ``qlora-eval rank`` starts without importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from qlora_eval import __version__
from qlora_eval.errors import QloraEvalError

# command name -> (module under qlora_eval.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "import": ("import_cmd", "import verdicts or answers into the store"),
    "export": ("export_cmd", "export judgments or answers from the store"),
    "rank": ("rank_cmd", "rank models from verdict files or the store (Elo or Bradley-Terry)"),
    "check": ("check_cmd", "fail (exit 1) when a model's rating regressed beyond its interval"),
    "generate": ("generate_cmd", "make models answer a prompt set"),
    "judge": ("judge_cmd", "judge stored answers pairwise"),
    "tournament": ("tournament_cmd", "generate, judge, rate and report in one go"),
    "place": ("place_cmd", "add a model to a leaderboard by judging it against a few rivals"),
    "raters": ("raters_cmd", "manage human raters (add, list, revoke, restore)"),
    "serve": ("serve_cmd", "serve the human-rating web form"),
    "train": ("train_cmd", "QLoRA-finetune a model (the Guanaco recipe)"),
    "merge": ("merge_cmd", "merge a LoRA adapter into a 16-bit model"),
    "mmlu": ("mmlu_cmd", "MMLU accuracy of a model"),
    "bench": ("bench_cmd", "quantization, memory and generation benchmarks"),
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qlora-eval",
        description="Train with QLoRA, judge pairwise, rank with honest error bars.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {name:<12} {help_}" for name, (_, help_) in COMMANDS.items()),
    )
    parser.add_argument("--version", action="version", version=f"qlora-eval {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND", help="one of the commands below")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    verbose = 0
    while args_list and args_list[0] in ("-v", "-vv", "--verbose"):
        verbose += 2 if args_list.pop(0) == "-vv" else 1
    if not args_list or args_list[0] not in COMMANDS:
        _top_parser().parse_args(args_list)  # prints help, version or the usage error and exits
        return 2
    command, rest = args_list[0], args_list[1:]
    module_name, help_ = COMMANDS[command]
    module = importlib.import_module(f"qlora_eval.cli.{module_name}")
    parser = argparse.ArgumentParser(prog=f"qlora-eval {command}", description=help_)
    parser.add_argument("-v", "--verbose", action="count", default=verbose, help="more logging (-vv for debug)")
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(module.run(args))
    except QloraEvalError as exc:
        print(f"qlora-eval {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qlora-eval {command}: interrupted; everything finished so far is stored", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""``qlora-eval mmlu``: MMLU accuracy of a model, in the QLoRA repo's or lm-evaluation-harness's format."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from qlora_eval.bench.mmlu import SUPERCATEGORIES, MmluResult, Mode, evaluate, load_hub_split, load_qlora_file
from qlora_eval.errors import ConfigError

_MODE_NOTE = {
    Mode.QLORA: "QLoRA repo format (BOS + prompt, letters 'A'..'D'); its headline is the macro average over subjects",
    Mode.HARNESS: "lm-evaluation-harness format (no BOS, continuations ' A'..' D'); its headline is the micro average",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", help="model spec, e.g. smollm2-135m or hf:/path?bits=4 (required unless --report-from)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, help="a QLoRA-format JSONL/JSON file ({subject, input, output})")
    source.add_argument(
        "--dataset", help="a hub dataset in the cais/mmlu layout (or a local folder of its parquet files)"
    )
    parser.add_argument(
        "--split", choices=["validation", "test"], default="test", help="split of --dataset (default test)"
    )
    parser.add_argument(
        "--shots",
        type=int,
        choices=[0, 5],
        default=None,
        help="examples before each question: --dataset default 5 (first 5 'dev' questions of the subject); "
        "a QLoRA file's prompts carry their own (default: as in the file)",
    )
    parser.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.QLORA.value, help="prompt format")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N questions")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per forward pass (default 8)")
    parser.add_argument(
        "--max-length", type=int, default=2048, help="prompts are cut from the left to this many tokens"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when present)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    parser.add_argument("--db", default=None, help="also store the result in this store file")
    parser.add_argument(
        "--html", type=Path, default=None, help="write a self-contained HTML report (tables by subject/supercategory)"
    )
    parser.add_argument(
        "--report-from",
        nargs="+",
        type=Path,
        metavar="JSON",
        default=None,
        help="evaluate nothing: combine these mmlu --json files side by side into the --html report",
    )
    parser.add_argument("--title", default=None, help="title of the --html report (default: MMLU and the models)")


def _print(result: MmluResult, model: str) -> None:
    print(f"model: {model}")
    print(f"mode: {result.mode.value} -- {_MODE_NOTE[result.mode]}; shots: {result.shots}")
    print(f"accuracy (micro): {result.accuracy:.4f}   macro over subjects: {result.macro_accuracy:.4f}   n: {result.n}")
    print(f"\n{'supercategory':<34} {'accuracy':>8} {'n':>6}")
    for name, score in sorted(result.supercategories.items()):
        print(f"{name:<34} {score.accuracy:>8.4f} {score.n:>6}")
    print(f"\n{'subject':<40} {'supercategory':<16} {'accuracy':>8} {'n':>5}")
    for name, score in sorted(result.subjects.items()):
        print(f"{name:<40} {SUPERCATEGORIES[name].split(' (')[0]:<16} {score.accuracy:>8.4f} {score.n:>5}")


def _command_line() -> str:
    import shlex
    import sys

    return shlex.join(["qlora-eval", *sys.argv[1:]]) if sys.argv else "qlora-eval mmlu"


def _write_html(
    args: argparse.Namespace, runs: list[Any], inputs: list[tuple[Path, int]], extra: dict[str, str]
) -> None:
    """Write the MMLU report of ``runs`` (``MmluRun``) to ``args.html``."""
    from qlora_eval.workflows.mmlu import mmlu_report_html

    html = mmlu_report_html(runs, inputs=inputs, extra=extra, title=args.title, command=_command_line())
    args.html.write_text(html, encoding="utf-8")
    print(f"wrote {args.html}")


def _report_from(args: argparse.Namespace) -> int:
    from qlora_eval.workflows.mmlu import load_mmlu_runs

    if args.html is None:
        raise ConfigError("--report-from combines result files into a report: add --html PATH")
    given = [f"--{k}" for k in ("model", "data", "dataset", "json", "db") if getattr(args, k) is not None]
    if given:
        raise ConfigError(f"--report-from evaluates nothing, so {', '.join(given)} do not apply; drop them")
    runs = load_mmlu_runs(args.report_from)
    _check_html_folder(args.html)
    _write_html(args, runs, [(p, r.n) for p, r in zip(args.report_from, runs, strict=True)], {})
    return 0


def _check_html_folder(path: Path) -> None:
    if not path.resolve().parent.is_dir():
        raise ConfigError(f"the folder of --html {path} does not exist; create it first")


def run(args: argparse.Namespace) -> int:
    if args.report_from is not None:
        return _report_from(args)
    if args.model is None or (args.data is None and args.dataset is None):
        raise ConfigError("pass --model SPEC and one of --data FILE / --dataset NAME (or --report-from JSON...)")
    if args.html is not None:
        _check_html_folder(args.html)  # before the long evaluation, not after
    from tqdm import tqdm

    from qlora_eval.models.hf import load_hf_model
    from qlora_eval.models.spec import parse_model_spec

    mode = Mode(args.mode)
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    dev = None
    if args.data is not None:
        items = load_qlora_file(args.data)
        shots = args.shots
        if shots is None:
            from qlora_eval.bench.mmlu import shots_in_qlora_input

            shots = shots_in_qlora_input(items[0].qlora_input or "")
        if mode is Mode.HARNESS and shots:
            raise ConfigError("harness mode takes its shots from the 'dev' split: use --dataset cais/mmlu or --shots 0")
    else:
        items = load_hub_split(args.dataset, args.split)
        shots = 5 if args.shots is None else args.shots
        if shots:
            dev = load_hub_split(args.dataset, "dev")
    if args.limit is not None:
        items = items[: args.limit]

    spec = parse_model_spec(args.model)
    loaded = load_hf_model(spec, device=args.device)
    with tqdm(total=len(items), desc="mmlu", unit="q") as bar:
        result = evaluate(
            loaded.model,
            loaded.tokenizer,
            items,
            mode=mode,
            shots=shots,
            dev=dev,
            batch_size=args.batch_size,
            max_length=args.max_length,
            progress=bar.update,
        )
    _print(result, spec.name)
    payload = {**result.to_dict(), "model": spec.name, "source": str(args.data or f"{args.dataset}[{args.split}]")}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    if args.db is not None:
        from qlora_eval.store import Store

        with Store(args.db) as store:
            store.add_result("mmlu", spec.name, payload)
        print(f"stored the result in {args.db}")
    if args.html is not None:
        from qlora_eval.report.mmlu import MmluRun

        run_ = MmluRun.from_document(payload, source="this run")
        inputs = [(args.data, result.n)] if args.data is not None else []
        extra = {"model spec": args.model, "questions from": payload["source"], "max length": str(args.max_length)}
        _write_html(args, [run_], inputs, extra)
    return 0

"""``qlora-eval generate``: make models answer a prompt set, into the store (resumable).

Examples::

    qlora-eval generate --models smollm2-135m "smollm2-135m?bits=4&name=smollm2-nf4" --prompts demo \\
        --db qlora-eval.db --json answers.json
    qlora-eval generate --models "hf:/models/llama-7b?bits=4&adapter=out/guanaco-7b&chat=guanaco" \\
        --prompts vicuna --data-dir ../shared/data --seed 1
    OPENAI_API_KEY=local qlora-eval generate --models "openai:smollm2?base_url=http://127.0.0.1:8000/v1" \\
        --prompts my_prompts.jsonl --prompt-field question

Answers already stored for the same model, prompt and settings are reused; Ctrl-C keeps every finished batch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qlora_eval import paths
from qlora_eval.errors import ConfigError
from qlora_eval.models.spec import DEFAULT_REGISTRY, GRAMMAR, parse_model_spec
from qlora_eval.store import DEFAULT_DB
from qlora_eval.types import GenerationSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    spec_help = GRAMMAR.format(aliases=", ".join(DEFAULT_REGISTRY.names())).replace("%", "%%")
    parser.add_argument("--models", nargs="+", required=True, metavar="SPEC", help=spec_help)
    parser.add_argument("--prompts", required=True, metavar="NAME|FILE", help="vicuna, oa, demo, or a .jsonl/.csv")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"folder with the real sets (default ${paths.DATA_ENV}, else download)",
    )
    parser.add_argument("--prompt-field", default="text", help="user files: field holding the prompt (default text)")
    parser.add_argument("--id-field", default=None, help="user files: field holding the id (default: row numbers)")
    parser.add_argument("--category-field", default=None, help="user files: field holding a category")
    parser.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    defaults = GenerationSettings()
    parser.add_argument("--temperature", type=float, default=defaults.temperature, help="0 = greedy (default 0.7)")
    parser.add_argument("--top-p", type=float, default=defaults.top_p, help="nucleus sampling (default 0.9)")
    parser.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens, help="(default 512)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="sampling seed (default 0)")
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT", help="extra stop string (repeatable)")
    parser.add_argument("--batch-size", type=int, default=8, help="conversations per batch (default 8)")
    parser.add_argument("--device", default=None, help="hf models: cpu or cuda (default: cuda when present)")
    parser.add_argument("--db", type=Path, default=Path(DEFAULT_DB), help=f"the store (default {DEFAULT_DB})")
    parser.add_argument("--json", type=Path, default=None, help="write {generated, reused, answers} here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from qlora_eval.generate import generate_answers
    from qlora_eval.models.factory import load_chat_model
    from qlora_eval.prompts import load_prompt_set
    from qlora_eval.store import Store

    specs = [parse_model_spec(text) for text in args.models]
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    try:
        settings = GenerationSettings(
            temperature=args.temperature,
            top_p=args.top_p,
            max_new_tokens=args.max_new_tokens,
            seed=args.seed,
            do_sample=args.temperature > 0,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    data_dir = paths.data_dir(args.data_dir)
    prompt_set = load_prompt_set(
        args.prompts,
        data_dir=data_dir,
        prompt_field=args.prompt_field,
        id_field=args.id_field,
        category_field=args.category_field,
    ).limit(args.limit)
    with Store(args.db) as store:
        report = generate_answers(
            store,
            specs,
            prompt_set,
            settings,
            batch_size=args.batch_size,
            stop=args.stop,
            loader=lambda spec: load_chat_model(spec, device=args.device),
            progress=not args.no_progress,
        )
    print(
        f"{report.generated} answers generated, {report.reused} reused "
        f"({len(specs)} models x {len(prompt_set)} prompts of {prompt_set.name} {prompt_set.version}) -> {args.db}"
    )
    if args.json is not None:
        payload = {
            "generated": report.generated,
            "reused": report.reused,
            "answers": [
                {"model": a.model, "prompt_id": a.prompt_id, "text": a.text, "tokens": a.answer_tokens}
                for a in report.answers
            ],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0

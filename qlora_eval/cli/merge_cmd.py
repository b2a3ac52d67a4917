"""``qlora-eval merge``: merge a LoRA adapter into a dequantized 16-bit copy of its base."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``merge`` options."""
    parser.add_argument("--base", required=True, help="model spec of the base the adapter was trained on")
    parser.add_argument("--adapter", required=True, help="adapter folder (a 'qlora-eval train' --output)")
    parser.add_argument("--output", required=True, help="folder for the merged safetensors model")
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default="bfloat16", help="merged dtype")


def run(args: argparse.Namespace) -> int:
    """Merge and report where the model went."""
    from qlora_eval.train.merge import merge_adapter
    from qlora_eval.train.model import resolve_base_model

    out = merge_adapter(resolve_base_model(args.base), args.adapter, args.output, dtype=args.dtype)
    print(f"merged model written to {out}")
    return 0

"""Batched vs one-at-a-time generation throughput with SmolLM2-135M-Instruct on the CPU (one run, one ratio).

Both modes answer the same prompts (the shipped ``demo`` set) greedily with the hf backend; the
one-at-a-time mode calls ``generate`` with one conversation per call, the batched mode with
``--batch-size`` conversations per call (left padding). Generated tokens per wall-clock second of
each mode, and their ratio, are printed as JSON with the hardware and library versions.

    python benchmarks/generate_batching.py
    python benchmarks/generate_batching.py --batch-size 12 --max-new-tokens 64 --repeats 2 --out result.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any


def _timed(model: Any, prompts: list[Any], settings: Any, batch_size: int) -> tuple[float, int, list[str]]:
    start = time.perf_counter()
    tokens, texts = 0, []
    for begin in range(0, len(prompts), batch_size):
        out = model.generate(prompts[begin : begin + batch_size], settings)
        tokens += sum(c.completion_tokens for c in out)
        texts.extend(c.text for c in out)
    return time.perf_counter() - start, tokens, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="model spec (default smollm2-135m, float32)")
    parser.add_argument("--batch-size", type=int, default=12, help="conversations per batched call (default 12)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="(default 64)")
    parser.add_argument("--repeats", type=int, default=1, help="measured repetitions of each mode (best kept)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()

    import torch

    from qlora_eval.bench.hardware import hardware_info
    from qlora_eval.models import load_chat_model
    from qlora_eval.prompts import load_prompt_set
    from qlora_eval.types import GenerationSettings

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    model = load_chat_model(args.model, device="cpu")
    prompts = [p.turns for p in load_prompt_set("demo").prompts]
    settings = GenerationSettings(do_sample=False, max_new_tokens=args.max_new_tokens)
    # Warm-up (first-call allocations, lazy inits) on both shapes; not measured.
    model.generate(prompts[:1], GenerationSettings(do_sample=False, max_new_tokens=4))
    model.generate(prompts[: args.batch_size], GenerationSettings(do_sample=False, max_new_tokens=4))

    # Other processes on the machine slow both modes; the load average says how much (1-minute values).
    load_before = os.getloadavg()[0]
    rows: dict[str, dict[str, Any]] = {}
    texts: dict[str, list[str]] = {}
    for mode, size in (("one_at_a_time", 1), ("batched", args.batch_size)):
        best: tuple[float, int, list[str]] | None = None
        for _ in range(args.repeats):
            run = _timed(model, prompts, settings, size)
            if best is None or run[0] < best[0]:
                best = run
        assert best is not None
        seconds, tokens, texts[mode] = best
        rows[mode] = {
            "batch_size": size,
            "seconds": round(seconds, 3),
            "generated_tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 2),
        }
    result = {
        "benchmark": "generate_batching",
        "model": args.model,
        "prompts": len(prompts),
        "max_new_tokens": args.max_new_tokens,
        "decoding": "greedy",
        "torch_threads": torch.get_num_threads(),
        "one_at_a_time": rows["one_at_a_time"],
        "batched": rows["batched"],
        "speedup_tokens_per_s": round(rows["batched"]["tokens_per_s"] / rows["one_at_a_time"]["tokens_per_s"], 2),
        "identical_answers": sum(a == b for a, b in zip(texts["one_at_a_time"], texts["batched"], strict=True)),
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "hardware": asdict(hardware_info("cpu")),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

"""Where a decode step's time goes: CPU vs CUDA time per op for one bf16 and one NF4 decode step.

Diagnoses launch-overhead-bound decoding (eager transformers on a slow host CPU).

    python benchmarks/decode_profile.py --shape llama-7b
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> int:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from qlora_eval.bench.builder import build_random_model
    from qlora_eval.bench.shapes import shape_config

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", default="llama-7b")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    _, config = shape_config(args.shape)
    report = {}
    for precision in ("bf16", "nf4"):
        model = build_random_model(config, quantize=precision == "nf4", device="cuda").model
        tokens = torch.randint(0, config.vocab_size, (1, 256), device="cuda")
        with torch.inference_mode():
            out = model(input_ids=tokens, use_cache=True, logits_to_keep=1)
            cache, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(3):
                out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
            torch.cuda.synchronize()
            start = time.perf_counter()
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                for _ in range(args.steps):
                    out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
                torch.cuda.synchronize()
            wall = (time.perf_counter() - start) / args.steps
        events = prof.key_averages()
        top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
        report[precision] = {
            "step_ms_profiled": wall * 1e3,
            "cuda_ms_per_step": sum(e.self_device_time_total for e in events) / 1e3 / args.steps,
            "top_self_cpu_ms_per_step": {e.key: round(e.self_cpu_time_total / 1e3 / args.steps, 2) for e in top},
        }
        x = torch.randn(1, config.hidden_size, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(config.hidden_size, config.hidden_size, device="cuda", dtype=torch.bfloat16)
        torch.nn.functional.linear(x, w)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(200):
            torch.nn.functional.linear(x, w)
        launch = (time.perf_counter() - start) / 200
        torch.cuda.synchronize()
        report[precision]["bf16_linear_m1_cpu_us_per_call"] = launch * 1e6
        del model, cache, out
        torch.cuda.empty_cache()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

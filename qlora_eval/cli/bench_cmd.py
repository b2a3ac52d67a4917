"""``qlora-eval bench quant|memory|generate``: quantization error, training memory, generation throughput."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from qlora_eval.errors import ConfigError

GIB = 2**30


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, default=None, help="write the result to this JSON file")
    parser.add_argument("--db", default=None, help="also store the result in this store file")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")

    quant = sub.add_parser("quant", help="bits per parameter and reconstruction error of nf4/fp4/int8 types")
    quant.add_argument("--model", required=True, help="model spec (16- or 32-bit) whose Linear weights to measure")
    quant.add_argument("--device", default="cpu", help="where to quantize: cpu (default) or cuda")
    quant.add_argument("--seed", type=int, default=0, help="seed of the normal reference weights")
    quant.add_argument(
        "--reference-rows", type=int, default=1024, help="rows of the 4096-column normal reference (default 1024)"
    )
    _common(quant)

    memory = sub.add_parser("memory", help="peak memory and speed of QLoRA/LoRA training steps on a random model")
    memory.add_argument(
        "--shape", required=True, help="llama-7b, llama-13b, llama-33b, llama-65b, tiny, or a config.json"
    )
    memory.add_argument("--seq-len", type=int, default=512, help="tokens per sequence (default 512)")
    memory.add_argument("--batch", type=int, default=1, help="sequences per step (default 1)")
    memory.add_argument("--method", choices=["qlora", "lora16"], default="qlora", help="NF4 base or bf16 base")
    memory.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu only for tiny smoke runs")
    memory.add_argument("--warmup", type=int, default=2, help="unmeasured steps first (default 2)")
    memory.add_argument("--steps", type=int, default=3, help="measured steps (default 3)")
    memory.add_argument("--seed", type=int, default=0)
    _common(memory)

    gen = sub.add_parser("generate", help="prefill/decode tokens per second and peak memory, bf16 vs NF4")
    what = gen.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="model spec to load in bf16 and NF4")
    what.add_argument("--shape", help="random model of this shape instead (see bench memory)")
    gen.add_argument("--batch-sizes", type=_int_list, default=[1, 32], help="comma-separated (default 1,32)")
    gen.add_argument("--prompt-len", type=int, default=256, help="prompt tokens (default 256)")
    gen.add_argument("--new-tokens", type=int, default=64, help="decode steps (default 64)")
    gen.add_argument("--precisions", default="bf16,nf4", help="comma-separated among bf16, nf4 (default both)")
    gen.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu only for tiny smoke runs")
    gen.add_argument("--seed", type=int, default=0)
    _common(gen)


def _emit(args: argparse.Namespace, kind: str, subject: str, payload: dict[str, Any]) -> None:
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if args.db is not None:
        from qlora_eval.store import Store

        with Store(args.db) as store:
            store.add_result(kind, subject, payload)
        print(f"stored the result in {args.db}")


def _run_quant(args: argparse.Namespace) -> int:
    import torch

    from qlora_eval.bench.hardware import hardware_info, require_device
    from qlora_eval.bench.quant import linear_weights, measure, normal_reference
    from qlora_eval.models.hf import load_hf_model
    from qlora_eval.models.spec import parse_model_spec

    require_device("cuda" if args.device.startswith("cuda") else args.device, "bench quant on CUDA")
    spec = parse_model_spec(args.model)
    if "bits" in spec.options and spec.bits in (4, 8):
        raise ConfigError(f"bench quant measures unquantized weights: drop bits={spec.bits} from {spec.text!r}")
    loaded = load_hf_model(spec.with_options(bits="32"), device="cpu")
    device = torch.device(args.device)
    weights = (w.detach().to(device) for w in linear_weights(loaded.model))
    report = measure(weights, source=spec.name)
    if args.reference_rows < 1:
        raise ConfigError(f"--reference-rows must be >= 1, got {args.reference_rows}")
    reference = normal_reference(args.reference_rows, seed=args.seed)
    payload = {
        **report.to_dict(),
        "model": spec.name,
        "normal_reference": reference.to_dict(),
        "blocksize": 64,
        "nested_blocksize": 256,
        "hardware": hardware_info("cuda" if device.type == "cuda" else "cpu").to_dict(),
    }
    print(f"{report.n_matrices} Linear weight matrices of {spec.name}, {report.n_params:,} weights")
    print(f"{'type':<16} {'bits/param':>10} {'rel error':>10} {'normal ref':>11}")
    for name, fig in report.types.items():
        ref = reference.types[name]
        print(f"{name:<16} {fig.bits_per_param:>10.4f} {fig.rel_error:>10.5f} {ref.rel_error:>11.5f}")
    _emit(args, "quant", spec.name, payload)
    return 0


def _run_memory(args: argparse.Namespace) -> int:
    from qlora_eval.bench.memory import Method, run_memory_benchmark

    result = run_memory_benchmark(
        args.shape,
        seq_len=args.seq_len,
        batch=args.batch,
        method=Method(args.method),
        device=args.device,
        warmup=args.warmup,
        steps=args.steps,
        seed=args.seed,
    )

    def gib(x: float | None) -> str:
        return "n/a (cpu)" if x is None else f"{x:.2f} GiB"

    print(
        f"{result.shape} {result.method} seq {result.seq_len} batch {result.batch} on {result.device}: "
        f"weights {result.weights_gib:.2f} GiB, peak allocated {gib(result.peak_allocated_gib)}, "
        f"peak reserved {gib(result.peak_reserved_gib)}, optimizer state {result.optimizer_state_gib:.2f} GiB, "
        f"{result.tokens_per_s:.1f} tokens/s"
    )
    _emit(args, "memory", result.shape, result.to_dict())
    return 0


def _run_generate(args: argparse.Namespace) -> int:
    from qlora_eval.bench.throughput import run_generate_benchmark, shape_loader

    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    bad = [p for p in precisions if p not in ("bf16", "nf4")]
    if bad or not precisions:
        raise ConfigError(f"--precisions takes bf16 and/or nf4, got {args.precisions!r}")
    if args.shape is not None:
        name = args.shape
        load = shape_loader(args.shape, device=args.device, seed=args.seed)
    else:
        from qlora_eval.bench.builder import weights_bytes
        from qlora_eval.models.hf import load_hf_model
        from qlora_eval.models.spec import parse_model_spec

        spec = parse_model_spec(args.model)
        name = spec.name

        def load(precision: str) -> tuple[Any, float]:
            loaded = load_hf_model(spec.with_options(bits="16" if precision == "bf16" else "4"), device=args.device)
            return loaded.model, weights_bytes(loaded.model) / GIB

    result = run_generate_benchmark(
        name,
        load,
        precisions=precisions,
        batches=args.batch_sizes,
        prompt_len=args.prompt_len,
        new_tokens=args.new_tokens,
        device=args.device,
        seed=args.seed,
    )
    print(f"{name} on {result.device}: prompt {args.prompt_len} tokens, {args.new_tokens} new tokens")
    print(f"{'precision':<9} {'batch':>5} {'prefill tok/s':>14} {'decode tok/s':>13} {'peak alloc GiB':>15}")
    for row in result.rows:
        peak = "n/a" if row.peak_allocated_gib is None else f"{row.peak_allocated_gib:.2f}"
        print(
            f"{row.precision:<9} {row.batch:>5} {row.prefill_tokens_per_s:>14.1f} "
            f"{row.decode_tokens_per_s:>13.1f} {peak:>15}"
        )
    _emit(args, "generate", name, result.to_dict())
    return 0


def run(args: argparse.Namespace) -> int:
    runners = {"quant": _run_quant, "memory": _run_memory, "generate": _run_generate}
    return runners[args.bench](args)

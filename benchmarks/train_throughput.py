"""QLoRA training throughput and peak memory of the trainer's own step on a random-initialised Llama.

    python benchmarks/train_throughput.py --shape llama-7b --seq-len 2048 --batch-sizes 1 4   # GPU
    python benchmarks/train_throughput.py --shape tiny --seq-len 64 --batch-sizes 1 2          # CPU check

The model is built straight from a ``LlamaConfig`` (no download), its linear layers quantized to NF4 with
double quantization layer by layer, then prepared exactly as ``qlora-eval train`` does
(``qlora_eval.train.model.add_lora``: k-bit preparation, non-reentrant gradient checkpointing, LoRA r=64 on
every linear layer but the head) and trained with the trainer's ``optimizer_step`` (paged AdamW 32-bit,
bf16 autocast, clipping at 0.3) in ``train()`` mode. Each batch size runs warm-up steps, then timed steps;
the device is synchronized around the timing and peak memory is reset before the warm-up.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from typing import Any

SHAPES: dict[str, dict[str, int]] = {
    # LLaMA-7B
    "llama-7b": {
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32000,
    },
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "vocab_size": 320,
    },
}


def build_quantized_llama(shape: str, seq_len: int, device: Any, compute_dtype: Any, seed: int) -> Any:
    """A random LlamaForCausalLM whose decoder linear layers are bitsandbytes NF4 ``Linear4bit``.

    Built in bf16 on the device (13.5 GB for 7B), then each linear layer is replaced by its 4-bit copy
    and the 16-bit weight freed at once, so the 16-bit model never coexists with the quantized one.
    """
    import bitsandbytes as bnb
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**SHAPES[shape], max_position_embeddings=max(seq_len, 2048), tie_word_embeddings=False)
    torch.manual_seed(seed)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # initialise straight in 16-bit: 13.5 GB for 7B instead of 27 GB
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    head = model.get_output_embeddings()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear) and child is not head:
                quantized = bnb.nn.Linear4bit(
                    child.in_features,
                    child.out_features,
                    bias=child.bias is not None,
                    compute_dtype=compute_dtype,
                    quant_type="nf4",
                    compress_statistics=True,  # double quantization
                    device="meta",
                )
                # Params4bit quantizes when moved to a device
                quantized.weight = bnb.nn.Params4bit(
                    child.weight.data, requires_grad=False, quant_type="nf4", compress_statistics=True
                ).to(device)
                setattr(parent, name, quantized)
                child.weight = None  # free the 16-bit weight now
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    # what transformers' bitsandbytes loader sets, so peft and accelerate treat the model as 4-bit
    model.is_loaded_in_4bit = True
    model.hf_device_map = {"": device.index if device.type == "cuda" else "cpu"}
    model.config.use_cache = False
    return model


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from qlora_eval.models.threads import current_choice
    from qlora_eval.train.card import hardware, versions
    from qlora_eval.train.config import DatasetFormat, make_config
    from qlora_eval.train.loop import (
        build_optimizer,
        build_scheduler,
        make_accelerator,
        make_step_context,
        optimizer_step,
    )
    from qlora_eval.train.model import add_lora, quantized_layer_classes, torch_dtype

    accelerator = make_accelerator()
    device = accelerator.device
    compute = "bfloat16" if device.type == "cuda" else "float32"
    threads = None
    if device.type == "cpu":  # as the trainer: no more torch threads than idle cores
        threads = current_choice(None)
        torch.set_num_threads(threads.threads)
    results = []
    for batch_size in args.batch_sizes:
        config = make_config(
            base_model=f"random:{args.shape}",
            dataset="random-tokens",
            dataset_format=DatasetFormat.INPUT_OUTPUT,
            output_dir="unused",
            per_device_batch_size=batch_size,
            grad_accum=1,
            compute_dtype=compute,
            lora_r=args.lora_r,
            max_steps=1000,
            warmup_ratio=0.0,
        )
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        t_build = time.perf_counter()
        model = build_quantized_llama(args.shape, args.seq_len, device, torch_dtype(compute), args.seed)
        build_seconds = time.perf_counter() - t_build
        model, targets = add_lora(model, config)
        optimizer = build_optimizer(config, [p for p in model.parameters() if p.requires_grad])
        scheduler = build_scheduler(config, optimizer)
        ctx = make_step_context(config, accelerator, model, optimizer, scheduler)
        ctx.ddp_model.train()  # gradient checkpointing only acts in train mode
        generator = torch.Generator().manual_seed(args.seed)
        vocab = SHAPES[args.shape]["vocab_size"]

        def batch(vocab: int = vocab, size: int = batch_size, gen: Any = generator) -> dict[str, Any]:
            ids = torch.randint(0, vocab, (size, args.seq_len), generator=gen)
            return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}

        targets_per_step = batch_size * (args.seq_len - 1)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        losses = []
        for _ in range(args.warmup_steps):
            totals, _norm = optimizer_step(ctx, [batch()], targets_per_step)
            losses.append(float(totals[0]) / targets_per_step)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            totals, _norm = optimizer_step(ctx, [batch()], targets_per_step)
            losses.append(float(totals[0]) / targets_per_step)  # float() syncs each step, as the trainer does
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        entry: dict[str, Any] = {
            "batch_size": batch_size,
            "seq_len": args.seq_len,
            "timed_steps": args.steps,
            "warmup_steps": args.warmup_steps,
            "seconds": seconds,
            "tokens_per_second": batch_size * args.seq_len * args.steps / seconds,
            "build_seconds": build_seconds,
            "losses": losses,
            "trainable_parameters": sum(p.numel() for p in ctx.trainable),
            "target_modules": targets,
            "layer_classes": quantized_layer_classes(model),
            "gradient_checkpointing": bool(getattr(model, "is_gradient_checkpointing", False)),
            "training_mode": bool(ctx.ddp_model.training),
            "optimizer": type(optimizer).__name__,
        }
        if device.type == "cuda":
            entry["peak_memory_allocated_bytes"] = int(torch.cuda.max_memory_allocated(device))
            entry["peak_memory_reserved_bytes"] = int(torch.cuda.max_memory_reserved(device))
            entry["peak_memory_allocated_gib"] = round(entry["peak_memory_allocated_bytes"] / 2**30, 2)
            entry["peak_memory_reserved_gib"] = round(entry["peak_memory_reserved_bytes"] / 2**30, 2)
        results.append(entry)
        print(json.dumps({k: v for k, v in entry.items() if k not in ("losses", "target_modules")}), flush=True)
        del ctx, model, optimizer, scheduler
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {
        "benchmark": "qlora-train-throughput",
        "shape": args.shape,
        "model_config": SHAPES[args.shape],
        "recipe": f"NF4 + double quant, bf16 compute/autocast, LoRA r={args.lora_r} alpha=16 on all linear layers, "
        "gradient checkpointing (non-reentrant), paged_adamw_32bit, max_grad_norm 0.3",
        "device": str(device),
        "cpu_threads": None if threads is None else {"threads": threads.threads, "reason": threads.reason},
        "results": results,
        "reference_plain_transformers_peft_bnb": {
            "batch_1": {"tokens_per_second": 2975, "peak_gib": 7.0},
            "batch_4": {"tokens_per_second": 3616, "peak_gib": 13.7},
        },
        "versions": versions(),
        "hardware": hardware(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="llama-7b")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--steps", type=int, default=5, help="timed optimizer steps per batch size")
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--lora-r", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=1)
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()

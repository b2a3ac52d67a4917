"""Our side of ``train_speed.py``: the trainer's own step with its defaults, each lever on/off, the fixed
2,048-token microbenchmark, and ``train()`` itself for the loss-equivalence run (adapter reloaded with peft).

The speed variants share one loaded model (loading a 7B model takes most of a minute): each variant
builds its step context from a config that differs from the default in one setting, runs the same
examples in the same order (a seeded shuffle), and reads its own peak memory after emptying the cache.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

# name -> config overrides of the defaults; each lever is measured against "default"
VARIANTS: dict[str, dict[str, Any]] = {
    # the first variant of a process pays one-off costs (allocator growth, kernel loading): run and discard
    "warmup-run": {},
    "default": {},
    "budget-3072": {"max_tokens_per_batch": 3072},
    "budget-2048": {"max_tokens_per_batch": 2048},
    "budget-2560": {"max_tokens_per_batch": 2560},
    "budget-4096": {"max_tokens_per_batch": 4096},
    "budget-8192": {"max_tokens_per_batch": 8192},
    "attention-sdpa-mask": {"attention": "sdpa"},
    "loss-plain": {"loss": "plain"},
    "loss-liger": {"loss": "liger"},
    "no-checkpointing": {"gradient_checkpointing": False},
    "padded-4x4-before": {"packing": False, "loss": "plain"},
    "padded-1x16-before": {
        "packing": False,
        "loss": "plain",
        "per_device_batch_size": 1,
        "grad_accum": 16,
    },
}


def _set_variant_model(model: Any, config: Any, device: Any) -> str:
    """Attention kernel and checkpointing of the shared model for one variant; returns the attention used."""
    from qlora_eval.train import attention
    from qlora_eval.train.loop import finish_model

    base = model.get_base_model()
    kind = finish_model(model, config, device)
    if kind is attention.AttentionKind.SDPA:
        base.set_attn_implementation("sdpa")
    if config.gradient_checkpointing:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        base.gradient_checkpointing_disable()
    return kind.value


def _timed_steps(ctx: Any, config: Any, examples: list[Any], order: list[int], steps: int) -> dict[str, Any]:
    import torch

    from qlora_eval.train.loop import optimizer_step, step_batches

    effective = config.per_device_batch_size * config.grad_accum
    records = []
    for step in range(steps):
        t0 = time.perf_counter()
        chosen = order[step * effective : (step + 1) * effective]
        targets = sum(examples[i].target_tokens for i in chosen)
        batches = step_batches(ctx, examples, chosen, config, 0)
        totals, _ = optimizer_step(ctx, batches, targets)
        torch.cuda.synchronize()
        records.append(
            {
                "seconds": time.perf_counter() - t0,
                "tokens": float(totals[1]),
                "loss": float(totals[0]) / targets,
                "passes": len(batches),
            }
        )
    timed = records[2:]
    return {
        "real_tokens_per_second": sum(r["tokens"] for r in timed) / sum(r["seconds"] for r in timed),
        "timed_steps": len(timed),
        "passes_per_step": [r["passes"] for r in records],
        "losses": [r["loss"] for r in records],
        "mean_tokens_per_sequence": sum(r["tokens"] for r in records) / (steps * effective),
    }


def _memory(optimizer: Any) -> dict[str, float]:
    import torch
    from train_speed_reference import optimizer_state_bytes

    return {
        "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
        "optimizer_state_gib": optimizer_state_bytes(optimizer) / 2**30,
    }


def _reset() -> None:
    import torch

    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def run_ours(args: argparse.Namespace) -> None:
    from train_speed import read_part

    from qlora_eval.train.card import hardware, versions
    from qlora_eval.train.config import DatasetFormat, make_config

    work = Path(args.work)
    config = make_config(
        base_model=f"hf:{work / 'model'}",
        dataset=str(work / "guanaco.jsonl"),
        dataset_format=DatasetFormat.GUANACO,
        output_dir=str(work / "ours_speed"),
        max_steps=1000,
        compute_dtype="bfloat16",
        seed=args.seed,
    )
    out: dict[str, Any] = read_part(work / "ours.json")
    out.update(defaults=config.to_dict(), versions=versions(), hardware=hardware())
    if {"variants", "fixed"} & set(args.parts):
        config = _speed(config, args, out)
    if "loss" in args.parts:
        out["loss_run"] = _loss_run(config, args, work)
    (work / "ours.json").write_text(json.dumps(out, indent=1), encoding="utf-8")


def _speed(config: Any, args: argparse.Namespace, out: dict[str, Any]) -> Any:
    """The lever variants and the fixed-length microbenchmark on one loaded model; returns the config used."""
    import torch

    from qlora_eval.train import batching, loop
    from qlora_eval.train.collator import TokenizedExample

    accelerator = loop.make_accelerator()
    t0 = time.perf_counter()
    # loaded with sdpa; each variant then switches to its own attention (a failing kernel fails one variant)
    prep = loop.prepare(replace(config, attention="sdpa"), accelerator)
    out["load_seconds"] = time.perf_counter() - t0
    lengths = [len(e) for e in prep.examples]
    out.setdefault("variants", {})
    names = (args.variants or list(VARIANTS)) if "variants" in args.parts else []
    for name in names:
        cfg = replace(config, **VARIANTS[name])
        try:
            used = _set_variant_model(prep.model, cfg, accelerator.device)
            ctx = loop.make_step_context(cfg, accelerator, prep.model, prep.optimizer, prep.scheduler)
            ctx.ddp_model.train()
            _reset()
            order = batching.epoch_order(lengths, 16, args.seed, 0, loop.grouped_order(cfg))
            entry = _timed_steps(ctx, cfg, prep.examples, order, args.steps)
            entry.update(_memory(prep.optimizer), attention=used, overrides=VARIANTS[name])
        except Exception as exc:  # a lever that cannot run here (e.g. no liger) is reported, not fatal
            entry = {"error": f"{type(exc).__name__}: {exc}", "overrides": VARIANTS[name]}
        out["variants"][name] = entry
        print(name, json.dumps({k: v for k, v in entry.items() if k != "losses"}), flush=True)
    # the fixed-length microbenchmark with the defaults: b sequences of 2,048 random tokens per step
    cfg = config
    if "error" in out["variants"].get("default", {}):
        cfg = config = replace(config, attention="sdpa")
        out["fallback"] = "the default variant failed; fixed and loss runs use attention=sdpa"
    _set_variant_model(prep.model, cfg, accelerator.device)
    gen = torch.Generator().manual_seed(args.seed)
    vocab = len(prep.tokenizer)
    for b in (1, 4) if "fixed" in args.parts else ():
        fixed = [
            TokenizedExample(tuple(ids), tuple(ids))
            for ids in torch.randint(0, vocab, (b * args.fixed_steps, 2048), generator=gen).tolist()
        ]
        fcfg = replace(cfg, per_device_batch_size=b, grad_accum=1)
        ctx = loop.make_step_context(fcfg, accelerator, prep.model, prep.optimizer, prep.scheduler)
        _reset()
        entry = _timed_steps(ctx, fcfg, fixed, list(range(len(fixed))), args.fixed_steps)
        entry.update(_memory(prep.optimizer))
        out[f"fixed_b{b}"] = entry
        print(f"fixed_b{b}", json.dumps({k: v for k, v in entry.items() if k != "losses"}), flush=True)
    del prep
    _reset()
    return config


def _loss_run(config: Any, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``train()`` as the CLI runs it, in the reference's order and loss; then reload the adapter with peft."""
    import torch
    from peft import PeftModel

    from qlora_eval.train.loop import train

    cfg = replace(
        config,
        output_dir=str(work / "ours_loss_run"),
        max_steps=args.loss_steps,
        train_on_source=True,
        shuffle=False,
        group_by_length=False,
        warmup_ratio=0.0,  # the reference's plain constant schedule has no warmup
        save_every=10_000,
    )
    check: dict[str, Any] = {}

    def reload_with_peft(model: Any) -> None:
        ids = torch.arange(1, 65, device="cuda").unsqueeze(0)
        model.eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            before = model(input_ids=ids).logits.float()
            base = model.unload()
            again = PeftModel.from_pretrained(base, cfg.output_dir)
            after = again(input_ids=ids).logits.float()
        check["peft_class"] = type(again).__name__
        check["max_abs_logit_difference"] = float((before - after).abs().max())
        check["lora_modules"] = sum(1 for n, _ in again.named_modules() if n.endswith("lora_A"))

    result = train(cfg, progress=False, on_end=reload_with_peft)
    return {
        "losses": result.losses,
        "real_tokens_per_second": result.tokens_per_second,
        "peak_allocated_gib": result.peak_memory_bytes / 2**30,
        "peak_reserved_gib": (result.peak_reserved_bytes or 0) / 2**30,
        "adapter_reload": check,
    }

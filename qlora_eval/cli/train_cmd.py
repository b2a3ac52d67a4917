"""``qlora-eval train``: QLoRA-finetune a model with the Guanaco recipe.

Data parallel: launch the same command under ``torchrun --nproc_per_node N -m qlora_eval.cli.main train ...``
(or ``accelerate launch``); each process loads its own 4-bit copy on its own GPU.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from qlora_eval.train.config import ATTENTIONS, DEFAULT_PRESET, LOSSES, OPTIMIZERS, PRESETS, DatasetFormat, make_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``train`` options; unset options take the preset's value."""
    parser.add_argument("--base-model", required=True, help="model spec of the base, e.g. smollm2-135m or hf:/path")
    parser.add_argument("--dataset", required=True, help="'oasst1' (timdettmers/openassistant-guanaco) or a JSONL file")
    parser.add_argument(
        "--dataset-format",
        choices=[f.value for f in DatasetFormat],
        default=None,
        help="row format of a JSONL file (oasst1 is always guanaco)",
    )
    parser.add_argument(
        "--output", required=True, help="folder for adapter, tokenizer, training.json, plot, checkpoints"
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET, help="per-size defaults")
    parser.add_argument("--max-steps", type=int, help="optimizer steps (default 1875)")
    parser.add_argument("--per-device-batch-size", type=int, help="sequences per forward pass and process")
    parser.add_argument("--grad-accum", type=int, help="forward passes per optimizer step and process")
    parser.add_argument("--learning-rate", type=float, help="peak learning rate after warmup")
    parser.add_argument("--warmup-ratio", type=float, help="share of the steps spent warming up (default 0.03)")
    parser.add_argument("--max-grad-norm", type=float, help="gradient clipping norm (default 0.3)")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="bitsandbytes optimizer")
    parser.add_argument("--lora-r", type=int, help="LoRA rank (default 64)")
    parser.add_argument("--lora-alpha", type=int, help="LoRA alpha (default 16)")
    parser.add_argument("--lora-dropout", type=float, help="LoRA dropout (preset: 0.1, 0.05 for 33B/65B)")
    parser.add_argument(
        "--target-modules", nargs="+", help="module names to adapt (default: every linear layer but the output head)"
    )
    parser.add_argument("--source-max-len", type=int, help="prompt tokens kept (the end of the prompt)")
    parser.add_argument("--target-max-len", type=int, help="reply tokens kept, end-of-sequence included (default 512)")
    parser.add_argument("--max-seq-len", type=int, help="cap on prompt + reply tokens")
    parser.add_argument("--train-on-source", action="store_true", default=None, help="also take the loss on the prompt")
    parser.add_argument(
        "--no-group-by-length",
        dest="group_by_length",
        action="store_false",
        default=None,
        help="plain shuffled batches",
    )
    parser.add_argument(
        "--no-gradient-checkpointing",
        dest="gradient_checkpointing",
        action="store_false",
        default=None,
        help="keep activations (faster, more memory)",
    )
    parser.add_argument(
        "--no-shuffle", dest="shuffle", action="store_false", default=None, help="train the examples in file order"
    )
    parser.add_argument(
        "--no-packing",
        dest="packing",
        action="store_false",
        default=None,
        help="padded passes of --per-device-batch-size sequences instead of packed token-budget passes",
    )
    parser.add_argument(
        "--max-tokens-per-batch", type=int, help="tokens per packed pass (default 2048; more: faster, more memory)"
    )
    parser.add_argument("--loss", choices=list(LOSSES), help="head + cross-entropy: chunked (default), plain, liger")
    parser.add_argument("--loss-chunk-tokens", type=int, help="target tokens per loss chunk (default 1024)")
    parser.add_argument(
        "--attention", choices=list(ATTENTIONS), help="auto (varlen flash on CUDA when packing, default), sdpa, varlen"
    )
    parser.add_argument("--mmlu-every", type=int, help="evaluate MMLU every N optimizer steps (and at the end)")
    parser.add_argument("--mmlu-limit", type=int, help="MMLU questions per evaluation (default 200)")
    parser.add_argument(
        "--mmlu-data", type=Path, help="QLoRA-format MMLU file ({subject, input, output}) for --mmlu-every"
    )
    parser.add_argument("--bits", type=int, choices=[4, 16, 32], help="base precision (4 = QLoRA NF4)")
    parser.add_argument(
        "--compute-dtype",
        choices=["bfloat16", "float16", "float32"],
        help="4-bit compute dtype (default: bfloat16 on CUDA as the paper; float32 on the CPU, where it is faster)",
    )
    parser.add_argument("--seed", type=int, help="seed of data order, LoRA init and dropout (default 42)")
    parser.add_argument("--save-every", type=int, help="optimizer steps between checkpoints (default 250)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output")
    parser.add_argument("--json", help="write {losses, steps, tokens_per_second, peak_memory_bytes} here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def default_compute_dtype() -> str:
    """bfloat16 on CUDA (the QLoRA recipe); float32 on the CPU, where bitsandbytes' bfloat16 path is slower."""
    import torch

    return "bfloat16" if torch.cuda.is_available() else "float32"


def mmlu_evaluator(data: Path | None, limit: int) -> Any:
    """MMLU during training with the bench's scorer (QLoRA prompts, zero-shot as the paper's script).

    The ``limit`` questions are spread evenly over the file (it is sorted by subject), so a small
    limit still covers many subjects.

    Raises:
        ConfigError: no ``--mmlu-data`` file.
    """
    from qlora_eval.bench.mmlu import Mode, evaluate, load_qlora_file, shots_in_qlora_input
    from qlora_eval.errors import ConfigError

    if data is None:
        raise ConfigError("--mmlu-every needs --mmlu-data FILE (e.g. QLoRA's zero_shot_mmlu_val.json)")
    items = load_qlora_file(data)
    if limit < len(items):
        items = [items[i * len(items) // limit] for i in range(limit)]
    shots = shots_in_qlora_input(items[0].qlora_input or "")

    def run_mmlu(model: Any, tokenizer: Any) -> dict[str, float]:
        result = evaluate(model, tokenizer, items, mode=Mode.QLORA, shots=shots)
        return {"accuracy": result.accuracy, "macro_accuracy": result.macro_accuracy, "n": float(result.n)}

    return run_mmlu


def run(args: argparse.Namespace) -> int:
    """Train, then write the card, the loss plot and (with ``--json``) the summary."""
    from qlora_eval.errors import ConfigError
    from qlora_eval.train.card import PLOT_FILE, summary_json, write_card, write_loss_plot
    from qlora_eval.train.loop import train

    if args.dataset == "oasst1":
        if args.dataset_format not in (None, DatasetFormat.GUANACO.value):
            raise ConfigError("--dataset oasst1 is in the guanaco format; drop --dataset-format")
        fmt = DatasetFormat.GUANACO
    elif args.dataset_format is None:
        raise ConfigError("--dataset FILE needs --dataset-format input-output|guanaco|alpaca|chat")
    else:
        fmt = DatasetFormat(args.dataset_format)
    config = make_config(
        base_model=args.base_model,
        dataset=args.dataset,
        dataset_format=fmt,
        output_dir=args.output,
        preset=args.preset,
        max_steps=args.max_steps,
        per_device_batch_size=args.per_device_batch_size,
        grad_accum=args.grad_accum,
        learning_rate=args.learning_rate,
        warmup_ratio=args.warmup_ratio,
        max_grad_norm=args.max_grad_norm,
        optimizer=args.optimizer,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=tuple(args.target_modules) if args.target_modules else None,
        source_max_len=args.source_max_len,
        target_max_len=args.target_max_len,
        max_seq_len=args.max_seq_len,
        train_on_source=args.train_on_source,
        group_by_length=args.group_by_length,
        gradient_checkpointing=args.gradient_checkpointing,
        bits=args.bits,
        compute_dtype=args.compute_dtype or default_compute_dtype(),
        seed=args.seed,
        save_every=args.save_every,
        shuffle=args.shuffle,
        packing=args.packing,
        max_tokens_per_batch=args.max_tokens_per_batch,
        loss=args.loss,
        loss_chunk_tokens=args.loss_chunk_tokens,
        attention=args.attention,
        mmlu_every=args.mmlu_every,
        mmlu_limit=args.mmlu_limit,
    )
    evaluator = mmlu_evaluator(args.mmlu_data, config.mmlu_limit) if config.mmlu_every is not None else None
    result = train(config, progress=not args.no_progress, resume=args.resume, evaluator=evaluator)
    if not result.is_main_process:
        return 0
    write_card(config, result)
    write_loss_plot(result, Path(config.output_dir) / PLOT_FILE, f"{config.base_model} on {result.data_description}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary_json(result), indent=1), encoding="utf-8")
    print(
        f"trained {result.steps} steps: loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}, "
        f"{result.tokens_per_second:.0f} tokens/s, peak memory {result.peak_memory_bytes / 2**30:.2f} GiB "
        f"({result.memory_kind}); adapter in {config.output_dir}"
    )
    return 0

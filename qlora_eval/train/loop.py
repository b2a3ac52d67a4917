"""The training loop: one process, or data parallel under torchrun/accelerate.

Each process loads its own quantized copy of the base on its own device (``device_map`` per local
rank); accelerate wraps the model in DistributedDataParallel, which averages the LoRA gradients.

The loss of a step is the mean over *all target tokens of the step* (every accumulation pass, every
process): each pass backpropagates ``sum of its token losses / tokens of the step * world size``
(DDP divides by the world size again). So the loss and the update do not depend on how the step's
examples are split into passes and processes: 1 process with 2 passes equals 2 processes with 1.
"""

from __future__ import annotations

import functools
import logging
import math
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qlora_eval.errors import ConfigError, TrainingDivergedError
from qlora_eval.models import threads
from qlora_eval.train import attention, batching, checkpoint, evaluation
from qlora_eval.train.collator import TokenizedExample, TokenizeSettings, tokenize_example
from qlora_eval.train.config import OPTIMIZERS, TrainConfig
from qlora_eval.train.data import LoadedData, hf_chat_renderer, load_examples
from qlora_eval.train.model import add_lora, load_base, load_tokenizer, quantized_layer_classes, resolve_base_model
from qlora_eval.train.step import (  # re-exported: the benchmarks import the step from here
    StepContext,
    finish_model,
    grouped_order,
    make_step_context,
    optimizer_step,
    step_batches,
)

log = logging.getLogger(__name__)

__all__ = [
    "Prepared",
    "StepContext",
    "TrainResult",
    "build_optimizer",
    "build_scheduler",
    "finish_model",
    "grouped_order",
    "make_accelerator",
    "make_step_context",
    "optimizer_step",
    "prepare",
    "step_batches",
    "train",
]


@dataclass(frozen=True)
class TrainResult:
    """What a finished run reports (the main process's view; figures cover all processes)."""

    output_dir: str
    losses: list[float]
    history: list[dict[str, float]]
    steps: int
    tokens_per_second: float
    peak_memory_bytes: int
    peak_reserved_bytes: int | None
    memory_kind: str
    world_size: int
    target_modules: list[str]
    layer_classes: dict[str, int]
    trainable_parameters: int
    train_seconds: float
    data_sha256: str
    data_description: str
    num_examples: int
    base_model_path: str
    is_main_process: bool
    cpu_threads: int | None  # torch threads of a CPU run (None on CUDA)
    cpu_threads_reason: str | None
    evaluations: list[dict[str, float]] = field(default_factory=list)  # MMLU during training (--mmlu-every)


@dataclass(frozen=True)
class Prepared:
    """The objects of a run before its first step (split out so benchmarks can reuse them)."""

    accelerator: Any
    model: Any
    optimizer: Any
    scheduler: Any
    tokenizer: Any
    examples: list[TokenizedExample]
    data: LoadedData
    target_modules: list[str]
    base_path: str


def make_accelerator() -> Any:
    """An accelerate ``Accelerator``: CUDA when present, else CPU (gloo when launched with several processes).

    On CUDA the caching allocator gets expandable segments unless ``PYTORCH_CUDA_ALLOC_CONF`` is set:
    packed passes vary in length from step to step, and with fixed segments the freed blocks of one
    length fit the next poorly (measured on the H200: 10.1 GiB reserved for 8.7 GiB allocated).
    """
    import os

    # read when CUDA's allocator starts, i.e. at the first allocation, which comes after this
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    import torch
    from accelerate import Accelerator, DistributedDataParallelKwargs

    # The frozen base takes part in no gradient, so unused-parameter search is only overhead.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=False)
    return Accelerator(cpu=not torch.cuda.is_available(), kwargs_handlers=[ddp])


def build_optimizer(config: TrainConfig, params: list[Any]) -> Any:
    """The bitsandbytes optimizer (paged AdamW 32-bit by default; bitsandbytes falls back to unpaged on CPU)."""
    import bitsandbytes as bnb

    cls = getattr(bnb.optim, OPTIMIZERS[config.optimizer])
    return cls(params, lr=config.learning_rate, betas=(0.9, config.adam_beta2), weight_decay=config.weight_decay)


def build_scheduler(config: TrainConfig, optimizer: Any) -> Any:
    """Constant learning rate after a linear warmup of ``config.warmup_steps`` steps.

    Fixes a flaw of the reference scripts: they combined ``lr_scheduler_type=constant`` with
    ``warmup_ratio=0.03``, and the plain constant schedule ignores warmup.
    """
    from transformers import get_constant_schedule_with_warmup

    return get_constant_schedule_with_warmup(optimizer, num_warmup_steps=config.warmup_steps)


def prepare(config: TrainConfig, accelerator: Any) -> Prepared:
    """Load data, tokenizer and model; build optimizer and scheduler."""
    import numpy as np
    import torch

    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    base_path = resolve_base_model(config.base_model)
    tokenizer = load_tokenizer(base_path)
    data = load_examples(config.dataset, config.dataset_format, chat_renderer=hf_chat_renderer(tokenizer))
    settings = TokenizeSettings(
        config.source_max_len, config.target_max_len, config.max_seq_len, config.train_on_source
    )
    examples = [tokenize_example(e, tokenizer, settings) for e in data.examples]
    device: Any = accelerator.local_process_index if accelerator.device.type == "cuda" else "cpu"
    model = load_base(base_path, config, device)
    model, targets = add_lora(model, config)
    finish_model(model, config, accelerator.device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(config, params)
    scheduler = build_scheduler(config, optimizer)
    return Prepared(accelerator, model, optimizer, scheduler, tokenizer, examples, data, targets, base_path)


def _peak_memory(device: Any) -> tuple[int, int | None, str]:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), int(torch.cuda.max_memory_reserved(device)), "cuda"
    # ru_maxrss is KiB on Linux, bytes on macOS
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024), None, "cpu-rss"


def train(
    config: TrainConfig,
    *,
    progress: bool = True,
    on_step: Callable[[dict[str, float]], None] | None = None,
    resume: bool = False,
    on_end: Callable[[Any], None] | None = None,
    evaluator: evaluation.Evaluator | None = None,
) -> TrainResult:
    """Run (or resume) a training run and write the adapter, tokenizer and checkpoints.

    Args:
        config: every setting.
        progress: show a tqdm bar on the main process.
        on_step: called on the main process with each step's record.
        resume: continue from the newest complete checkpoint in ``config.output_dir``.
        on_end: called on the main process with the trained model after the adapter is saved.
        evaluator: scores the adapter every ``config.mmlu_every`` steps (``qlora_eval.train.evaluation``).

    Raises:
        ConfigError: a bad setting, too little data, or nothing to resume from.
    """
    import torch
    from tqdm import tqdm

    accelerator = make_accelerator()
    previous_threads = torch.get_num_threads()
    choice = None
    if accelerator.device.type == "cpu":
        choice = threads.current_choice(config.cpu_threads)
        torch.set_num_threads(choice.threads)
        log.info("torch threads: %s", choice.reason)
        if progress and accelerator.is_main_process:
            tqdm.write(f"CPU run with {choice.reason}", file=sys.stderr)
    try:
        return _train(
            config,
            accelerator,
            choice,
            progress=progress,
            on_step=on_step,
            resume=resume,
            on_end=on_end,
            evaluator=evaluator,
        )
    finally:
        torch.set_num_threads(previous_threads)  # the caller's setting, whatever this run chose


def _train(
    config: TrainConfig,
    accelerator: Any,
    choice: threads.ThreadChoice | None,
    *,
    progress: bool,
    on_step: Callable[[dict[str, float]], None] | None,
    resume: bool,
    on_end: Callable[[Any], None] | None,
    evaluator: evaluation.Evaluator | None,
) -> TrainResult:
    import torch
    from tqdm import tqdm

    evaluation.check(config, evaluator)
    world, rank = accelerator.num_processes, accelerator.process_index
    prep = prepare(config, accelerator)
    model, optimizer, scheduler = prep.model, prep.optimizer, prep.scheduler
    lengths = [len(e) for e in prep.examples]
    effective = config.effective_batch(world)
    batching.steps_per_epoch(len(lengths), effective)  # fails early with a clear message

    start, history, train_seconds = 0, [], 0.0
    if resume:
        found = checkpoint.latest_checkpoint(config.output_dir)
        if found is None:
            raise ConfigError(f"--resume: no checkpoint in {checkpoint.checkpoints_dir(config.output_dir)}")
        state = checkpoint.load(found, model=model, optimizer=optimizer, scheduler=scheduler, config=config, rank=rank)
        start, history, train_seconds = state.step, state.history, state.train_seconds
        log.info("resuming from %s at step %d", found, start)

    ctx = make_step_context(config, accelerator, model, optimizer, scheduler)
    device = accelerator.device
    trainable = ctx.trainable
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    order_cache = functools.lru_cache(maxsize=2)(
        lambda epoch: batching.epoch_order(
            lengths, effective, config.seed, epoch, grouped_order(config), shuffle=config.shuffle
        )
    )
    per_epoch = batching.steps_per_epoch(len(lengths), effective)
    ctx.ddp_model.train()  # gradient checkpointing only acts in train mode
    bar = tqdm(
        total=config.max_steps, initial=start, desc="train", disable=not (progress and accelerator.is_main_process)
    )
    for step in range(start, config.max_steps):
        t0 = time.perf_counter()
        epoch, within = divmod(step, per_epoch)
        step_examples = order_cache(epoch)[within * effective : (within + 1) * effective]
        step_targets = sum(prep.examples[i].target_tokens for i in step_examples)
        batches = step_batches(ctx, prep.examples, step_examples, config, rank)
        lr = float(scheduler.get_last_lr()[0])
        totals, grad_norm = optimizer_step(ctx, batches, step_targets)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        record = {
            "step": step + 1,
            "loss": float(totals[0]) / step_targets,
            "learning_rate": lr,
            "grad_norm": grad_norm,
            "tokens": float(totals[1]),
            "target_tokens": float(step_targets),
            "seconds": seconds,
        }
        if not math.isfinite(record["loss"]):
            raise TrainingDivergedError(f"the loss became {record['loss']} at step {step + 1}; lower --learning-rate")
        history.append(record)
        if evaluator is not None and evaluation.due(config, step + 1):
            if accelerator.is_main_process:
                record.update(evaluation.run(model, prep.tokenizer, evaluator, config))
            accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.4f}")
            if on_step is not None:
                on_step(record)
        if (step + 1) % config.save_every == 0 or step + 1 == config.max_steps:
            _save_checkpoint(accelerator, model, optimizer, scheduler, config, history, train_seconds, step + 1)
    bar.close()

    peak, reserved, kind = _peak_memory(device)
    if accelerator.is_main_process:
        out_dir = Path(config.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(out_dir), safe_serialization=True)
        prep.tokenizer.save_pretrained(str(out_dir))
        attention.for_unpacked_calls(model)
        if on_end is not None:
            on_end(model)
    accelerator.wait_for_everyone()
    timed = history[1:] if len(history) > 1 else history  # the first step includes warm-up work
    tps = sum(h["tokens"] for h in timed) / max(sum(h["seconds"] for h in timed), 1e-9)
    return TrainResult(
        output_dir=config.output_dir,
        losses=[h["loss"] for h in history],
        history=history,
        steps=len(history),
        tokens_per_second=tps,
        peak_memory_bytes=peak,
        peak_reserved_bytes=reserved,
        memory_kind=kind,
        world_size=world,
        target_modules=prep.target_modules,
        layer_classes=quantized_layer_classes(model),
        trainable_parameters=sum(p.numel() for p in trainable),
        train_seconds=train_seconds,
        data_sha256=prep.data.sha256,
        data_description=prep.data.description,
        num_examples=len(prep.examples),
        base_model_path=prep.base_path,
        is_main_process=bool(accelerator.is_main_process),
        cpu_threads=choice.threads if choice is not None else None,
        cpu_threads_reason=choice.reason if choice is not None else None,
        evaluations=evaluation.evaluations(history),
    )


def _save_checkpoint(
    accelerator: Any,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    config: TrainConfig,
    history: list[dict[str, float]],
    train_seconds: float,
    step: int,
) -> None:
    accelerator.wait_for_everyone()
    checkpoint.write_rank_rng(config.output_dir, step, accelerator.process_index)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        checkpoint.write_main(
            config.output_dir,
            step,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            config=config,
            history=history,
            train_seconds=train_seconds,
        )
    accelerator.wait_for_everyone()

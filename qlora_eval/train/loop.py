"""The training loop: one process, or data parallel under torchrun/accelerate.

Each process loads its own quantized copy of the base on its own device (``device_map`` per local
rank); accelerate wraps the model in DistributedDataParallel, which averages the LoRA gradients.

The loss of a step is the mean over *all target tokens of the step* (every accumulation pass, every
process): each pass backpropagates ``sum of its token losses / tokens of the step * world size``
(DDP divides by the world size again). So the loss and the update do not depend on how the step's
examples are split into passes and processes: 1 process with 2 passes equals 2 processes with 1.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qlora_eval.errors import ConfigError, TrainingDivergedError
from qlora_eval.train import attention, batching, checkpoint, packing, threads
from qlora_eval.train.collator import TokenizedExample, TokenizeSettings, collate, tokenize_example
from qlora_eval.train.config import OPTIMIZERS, TrainConfig
from qlora_eval.train.data import LoadedData, hf_chat_renderer, load_examples
from qlora_eval.train.loss import LossKind, make_loss_module
from qlora_eval.train.model import add_lora, load_base, load_tokenizer, quantized_layer_classes, resolve_base_model

log = logging.getLogger(__name__)


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


def grouped_order(config: TrainConfig) -> bool:
    """Whether the epoch order is length-grouped: only for padded passes (``group_by_length``).

    Packed passes have no padding to save, and grouping would only make the first steps the longest.
    """
    return config.group_by_length and not config.packing


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


def finish_model(model: Any, config: TrainConfig, device: Any) -> attention.AttentionKind:
    """The speed settings that do not change the math: attention kernel and the head's storage dtype.

    k-bit preparation stores the frozen output head in float32, but under bf16 autocast its matmul
    runs in bf16 anyway (the weight is cast on every call), so on CUDA it is kept in the compute dtype:
    the same numbers, half the memory, no per-pass cast.
    """
    import torch

    kind = attention.resolve(attention.AttentionKind(config.attention), config.packing)
    attention.apply(model.get_base_model() if hasattr(model, "get_base_model") else model, kind)
    amp = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(config.compute_dtype)
    if device.type == "cuda" and amp is not None:
        head = model.get_output_embeddings()
        if head is not None and not head.weight.requires_grad:
            head.weight.data = head.weight.data.to(amp)
        _store_embeddings_16bit(model.get_input_embeddings(), amp)
    return kind


def _store_embeddings_16bit(embeddings: Any, dtype: Any) -> None:
    """Keep frozen float32 input embeddings in 16 bits and hand float32 to the layers, when that is exact.

    A base loaded in bf16 and upcast by k-bit preparation holds only bf16-representable values, so the
    16-bit copy loses nothing and the layers see the very same float32 numbers; half the memory.
    """
    import torch

    weight = embeddings.weight
    if weight.requires_grad or weight.dtype != torch.float32:
        return
    low = weight.data.to(dtype)
    if not torch.equal(low.float(), weight.data):  # not exact: leave it as it is
        return
    weight.data = low
    embeddings.register_forward_hook(lambda _module, _inputs, output: output.float())


def _peak_memory(device: Any) -> tuple[int, int | None, str]:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), int(torch.cuda.max_memory_reserved(device)), "cuda"
    # ru_maxrss is KiB on Linux, bytes on macOS
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024), None, "cpu-rss"


@dataclass(frozen=True)
class StepContext:
    """What one optimizer step needs (shared by ``train`` and the throughput benchmark)."""

    accelerator: Any
    ddp_model: Any
    trainable: list[Any]
    optimizer: Any
    scheduler: Any
    max_grad_norm: float
    world_size: int
    device: Any
    autocast_dtype: Any  # None: no autocast
    packing: bool
    max_tokens_per_batch: int


def make_step_context(config: TrainConfig, accelerator: Any, model: Any, optimizer: Any, scheduler: Any) -> StepContext:
    """Wrap the model in its loss module and for data parallelism (a no-op for one process)."""
    import torch

    device = accelerator.device
    amp = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(config.compute_dtype)
    loss_module = make_loss_module(model, LossKind(config.loss), config.loss_chunk_tokens)
    return StepContext(
        accelerator=accelerator,
        ddp_model=accelerator.prepare_model(loss_module),
        trainable=[p for p in model.parameters() if p.requires_grad],
        optimizer=optimizer,
        scheduler=scheduler,
        max_grad_norm=config.max_grad_norm,
        world_size=accelerator.num_processes,
        device=device,
        # bf16 autocast on CUDA as the QLoRA scripts (bf16=True); on the CPU only the 4-bit layers use compute_dtype
        autocast_dtype=amp if device.type == "cuda" else None,
        packing=config.packing,
        max_tokens_per_batch=config.max_tokens_per_batch,
    )


def step_batches(
    ctx: StepContext, examples: list[TokenizedExample], step_examples: list[int], config: TrainConfig, rank: int
) -> list[dict[str, Any]]:
    """This process's passes of one step: packed by token budget, or padded by sequence count."""
    passes = batching.micro_batches(
        step_examples, config.per_device_batch_size, config.grad_accum, ctx.world_size, rank
    )
    if not ctx.packing:
        pad_id = 0  # padded positions are masked out of attention and loss, so the id never matters
        return [collate([examples[i] for i in indices], pad_id) for indices in passes]
    mine = [i for indices in passes for i in indices]
    lengths = {i: len(examples[i]) for i in mine}
    packed = packing.token_budget_passes(mine, lengths, ctx.max_tokens_per_batch)
    return [packing.collate_packed([examples[i] for i in indices]) for indices in packed]


def optimizer_step(ctx: StepContext, batches: list[dict[str, Any]], step_targets: int) -> tuple[Any, float]:
    """Forward/backward every pass of this process, clip, step optimizer and scheduler.

    Args:
        ctx: the step context.
        batches: this process's passes (padded: ``input_ids``, ``attention_mask``, ``labels``; packed:
            ``input_ids``, ``labels``, ``position_ids``, ``cu_seq_lens``, ``max_length``).
        step_targets: target tokens of the whole step over all processes and passes (the loss denominator).

    Returns:
        A tensor ``[sum of token losses, non-padding tokens]`` summed over all processes, and the grad norm.
    """
    import torch

    device, world = ctx.device, ctx.world_size
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    tokens = torch.zeros((), dtype=torch.float64, device=device)
    for m, cpu_batch in enumerate(batches):
        batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in cpu_batch.items()}
        last = m == len(batches) - 1
        # gradients are all-reduced only after the last pass of the step
        sync = contextlib.nullcontext() if last or world == 1 else ctx.accelerator.no_sync(ctx.ddp_model)
        with sync:
            with torch.autocast(
                device.type, dtype=ctx.autocast_dtype or torch.float32, enabled=ctx.autocast_dtype is not None
            ):
                pass_sum = ctx.ddp_model(**batch)  # the summed token loss of the pass (float32)
            (pass_sum * (world / step_targets)).backward()
        loss_sum += pass_sum.detach().double()
        # real (non-padding) tokens of the pass
        tokens += batch["attention_mask"].sum() if "attention_mask" in batch else batch["input_ids"].numel()
    grad_norm = float(ctx.accelerator.clip_grad_norm_(ctx.trainable, ctx.max_grad_norm))
    ctx.optimizer.step()
    ctx.scheduler.step()
    ctx.optimizer.zero_grad(set_to_none=True)
    totals = torch.stack([loss_sum, tokens])
    if world > 1:
        totals = ctx.accelerator.reduce(totals, reduction="sum")
    return totals, grad_norm


def train(
    config: TrainConfig,
    *,
    progress: bool = True,
    on_step: Callable[[dict[str, float]], None] | None = None,
    resume: bool = False,
    on_end: Callable[[Any], None] | None = None,
) -> TrainResult:
    """Run (or resume) a training run and write the adapter, tokenizer and checkpoints.

    Args:
        config: every setting.
        progress: show a tqdm bar on the main process.
        on_step: called on the main process with each step's record.
        resume: continue from the newest complete checkpoint in ``config.output_dir``.

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
        return _train(config, accelerator, choice, progress=progress, on_step=on_step, resume=resume, on_end=on_end)
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
) -> TrainResult:
    import torch
    from tqdm import tqdm

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

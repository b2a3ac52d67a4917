"""One optimizer step: the model's speed settings, the passes of a step, forward/backward/clip/update.

Shared by ``train`` and the benchmarks (``benchmarks/train_speed.py``, ``train_throughput.py``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from qlora_eval.train import attention, batching, packing
from qlora_eval.train.collator import TokenizedExample, collate
from qlora_eval.train.config import TrainConfig
from qlora_eval.train.loss import LossKind, make_loss_module


def grouped_order(config: TrainConfig) -> bool:
    """Whether the epoch order is length-grouped: only for padded passes (``group_by_length``).

    Packed passes have no padding to save, and grouping would only make the first steps the longest.
    """
    return config.group_by_length and not config.packing


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
    lengths = [len(e) for e in examples]
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

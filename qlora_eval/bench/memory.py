"""Training memory benchmark: peak GPU memory and speed of QLoRA (or 16-bit LoRA) finetuning steps.

The setup follows the QLoRA recipe: NF4 + double quantization base with bf16 compute, LoRA
r=64 on every linear layer, gradient checkpointing, paged AdamW with 32-bit states. The
model is random (its shape is what decides memory) and built layer by layer by
:mod:`qlora_eval.bench.builder`. After the warmup steps the device is synchronised and the
peak statistics reset, so the peaks cover only the measured steps.

Note on paged optimizers: their states live in CUDA unified memory allocated by bitsandbytes,
outside PyTorch's caching allocator, so they are *not* part of ``peak_allocated``/``peak_reserved``
(they are reported separately as ``optimizer_state_gib``).
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from qlora_eval.bench.builder import BuiltModel, build_random_model
from qlora_eval.bench.hardware import hardware_info, require_device
from qlora_eval.bench.shapes import shape_config
from qlora_eval.errors import ConfigError

GIB = 2**30


class Method(Enum):
    """What is finetuned."""

    QLORA = "qlora"  # NF4 + double-quant base, LoRA adapters
    LORA16 = "lora16"  # bf16 base, LoRA adapters


@dataclass(frozen=True)
class LoraSettings:
    """The adapter setup (QLoRA paper: r=64, alpha=16, all linear layers)."""

    r: int = 64
    alpha: int = 16
    dropout: float = 0.05
    target_modules: str = "all-linear"


@dataclass(frozen=True)
class MemoryResult:
    """One row of the memory table. Memory figures in GiB; None where the device cannot tell (CPU)."""

    shape: str
    method: str
    seq_len: int
    batch: int
    device: str
    n_params: int
    trainable_params: int
    weights_gib: float
    weights_allocated_gib: float | None
    optimizer_state_gib: float
    peak_allocated_gib: float | None
    peak_reserved_gib: float | None
    tokens_per_s: float
    step_s: float
    warmup_steps: int
    steps: int
    losses: list[float]
    optimizer: str
    paged: bool
    gradient_checkpointing: bool
    lora: dict[str, Any]
    hardware: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(seq_len: int, batch: int, warmup: int, steps: int, max_positions: int | None) -> None:
    if seq_len < 2 or batch < 1 or warmup < 0 or steps < 1:
        raise ConfigError(
            f"need --seq-len >= 2, --batch >= 1, --warmup >= 0, --steps >= 1, got {seq_len}, {batch}, {warmup}, {steps}"
        )
    if max_positions is not None and seq_len > max_positions:
        raise ConfigError(f"--seq-len {seq_len} exceeds the shape's max_position_embeddings {max_positions}")


def add_lora(built: BuiltModel, lora: LoraSettings, *, gradient_checkpointing: bool) -> Any:
    """Wrap the model with LoRA adapters (bf16, as QLoRA trains them) and set it up for training."""
    import torch
    from peft import LoraConfig, get_peft_model

    model = built.model
    model.config.use_cache = False
    if gradient_checkpointing:
        # Non-reentrant checkpointing needs no requires_grad trick on the (frozen) inputs.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    for param in model.parameters():
        param.requires_grad_(False)
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config, autocast_adapter_dtype=False)
    for name, param in peft_model.named_parameters():
        if "lora_" in name:
            param.data = param.data.to(torch.bfloat16)
    peft_model.train()
    return peft_model


def run_memory_benchmark(
    shape: str,
    *,
    seq_len: int,
    batch: int,
    method: Method = Method.QLORA,
    device: str = "cuda",
    warmup: int = 2,
    steps: int = 3,
    seed: int = 0,
    lora: LoraSettings | None = None,
    gradient_checkpointing: bool = True,
) -> MemoryResult:
    """Build ``shape``, add LoRA and time ``steps`` training steps after ``warmup`` ones.

    Args:
        shape: a name from ``qlora_eval.bench.shapes.SHAPES`` or a config.json path.
        seq_len: tokens per sequence.
        batch: sequences per step.
        method: qlora (NF4 base) or lora16 (bf16 base).
        device: ``cuda`` (the real benchmark) or ``cpu`` (smoke runs of tiny shapes).
        warmup: steps run before the peaks are reset (allocates optimizer state, autotunes kernels).
        steps: measured steps.
        seed: seeds weights and the random token batches.
        lora: adapter settings (default: r=64, alpha=16, all linear layers).
        gradient_checkpointing: recompute activations in the backward pass (QLoRA does).

    Raises:
        DeviceError: ``device='cuda'`` on a machine without a CUDA GPU.
        ConfigError: a bad shape, size or step count.
    """
    import bitsandbytes as bnb
    import torch

    require_device(device, "the memory benchmark")
    name, config = shape_config(shape)
    _check(seq_len, batch, warmup, steps, getattr(config, "max_position_embeddings", None))
    lora = lora or LoraSettings()
    cuda = device == "cuda"
    if cuda:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    base_allocated = torch.cuda.memory_allocated() if cuda else 0

    built = build_random_model(config, quantize=method is Method.QLORA, device=device, seed=seed)
    weights_allocated = (torch.cuda.memory_allocated() - base_allocated) / GIB if cuda else None
    model = add_lora(built, lora, gradient_checkpointing=gradient_checkpointing)
    trainable = [p for p in model.parameters() if p.requires_grad]
    # Paged states need CUDA unified memory; on the CPU the same 32-bit AdamW runs unpaged.
    optimizer_class = bnb.optim.PagedAdamW32bit if cuda else bnb.optim.AdamW32bit
    optimizer = optimizer_class(trainable, lr=2e-4, weight_decay=0.0)

    generator = torch.Generator(device=device).manual_seed(seed)
    vocab = int(config.vocab_size)
    losses: list[float] = []

    def step() -> None:
        tokens = torch.randint(0, vocab, (batch, seq_len), device=device, generator=generator)
        loss = model(input_ids=tokens, labels=tokens).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))

    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak_allocated = torch.cuda.max_memory_allocated() / GIB if cuda else None
    peak_reserved = torch.cuda.max_memory_reserved() / GIB if cuda else None
    if not all(math.isfinite(x) for x in losses):
        raise RuntimeError(f"training produced non-finite losses {losses}; the benchmark setup is broken")

    state_bytes = sum(
        t.numel() * t.element_size()
        for state in optimizer.state.values()
        for t in state.values()
        if isinstance(t, torch.Tensor)
    )
    result = MemoryResult(
        shape=name,
        method=method.value,
        seq_len=seq_len,
        batch=batch,
        device=device,
        n_params=built.n_params,
        trainable_params=sum(p.numel() for p in trainable),
        weights_gib=built.weights_bytes / GIB,
        weights_allocated_gib=weights_allocated,
        optimizer_state_gib=state_bytes / GIB,
        peak_allocated_gib=peak_allocated,
        peak_reserved_gib=peak_reserved,
        tokens_per_s=batch * seq_len * steps / elapsed,
        step_s=elapsed / steps,
        warmup_steps=warmup,
        steps=steps,
        losses=losses,
        optimizer=f"bitsandbytes {optimizer_class.__name__}",
        paged=cuda,
        gradient_checkpointing=gradient_checkpointing,
        lora=asdict(lora),
        hardware=hardware_info(device).to_dict(),
    )
    return result

"""Generation throughput: prefill and decode tokens/s and peak memory, bf16 vs NF4, at several batch sizes.

Prefill is one forward pass over ``batch x prompt_len`` random tokens that fills the KV cache;
decode is ``new_tokens`` single-token forward passes on that cache (greedy, no stop token, so
every run does the same work). One untimed warmup run of the same shapes precedes each
measurement; the device is synchronised around every timed region and the peak memory reset
before it. This is eager transformers (no CUDA graphs, no fused serving kernels): at small
batches decode is bound by host-side launch overhead, not by the GPU.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from qlora_eval.bench.hardware import hardware_info, require_device
from qlora_eval.errors import ConfigError

GIB = 2**30


@dataclass(frozen=True)
class GenerateFigures:
    """One (precision, batch) cell. Memory in GiB; None on the CPU."""

    precision: str
    batch: int
    prompt_len: int
    new_tokens: int
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    prefill_s: float
    decode_s: float
    peak_allocated_gib: float | None
    peak_reserved_gib: float | None
    weights_gib: float | None


@dataclass(frozen=True)
class GenerateResult:
    """All cells of one ``bench generate`` run."""

    model: str
    device: str
    rows: list[GenerateFigures]
    hardware: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "rows": [asdict(row) for row in self.rows],
            "hardware": self.hardware,
        }


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def measure_generation(
    model: Any, *, batch: int, prompt_len: int, new_tokens: int, device: str, seed: int = 0
) -> tuple[float, float]:
    """Time one prefill and ``new_tokens`` decode steps; returns (prefill seconds, decode seconds)."""
    import torch

    vocab = int(model.config.vocab_size)
    generator = torch.Generator(device=device).manual_seed(seed)
    tokens = torch.randint(0, vocab, (batch, prompt_len), device=device, generator=generator)
    with torch.inference_mode():
        _sync(device)
        start = time.perf_counter()
        out = model(input_ids=tokens, use_cache=True, logits_to_keep=1)
        _sync(device)
        prefill = time.perf_counter() - start
        cache = out.past_key_values
        next_token = out.logits[:, -1].argmax(-1, keepdim=True)
        start = time.perf_counter()
        for _ in range(new_tokens):
            out = model(input_ids=next_token, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            next_token = out.logits[:, -1].argmax(-1, keepdim=True)
        _sync(device)
        decode = time.perf_counter() - start
    return prefill, decode


def run_generate_benchmark(
    name: str,
    load: Callable[[str], tuple[Any, float]],
    *,
    precisions: Sequence[str] = ("bf16", "nf4"),
    batches: Sequence[int] = (1, 32),
    prompt_len: int = 256,
    new_tokens: int = 64,
    device: str = "cuda",
    seed: int = 0,
) -> GenerateResult:
    """Measure every (precision, batch) cell, loading one precision at a time.

    Args:
        name: what the model is (a spec or shape name), for the result.
        load: precision (``bf16``/``nf4``) -> (model on ``device`` in eval mode, weights GiB).
        precisions: which precisions to load, in order.
        batches: batch sizes to measure for each precision.
        prompt_len: prompt tokens per sequence.
        new_tokens: decode steps.
        device: ``cuda`` or ``cpu`` (smoke runs only).
        seed: seeds the random prompts.

    Raises:
        DeviceError: ``device='cuda'`` without a CUDA GPU.
    """
    import torch

    require_device(device, "the generation benchmark")
    if prompt_len < 1 or new_tokens < 1 or not batches or min(batches) < 1:
        raise ConfigError("need --prompt-len >= 1, --new-tokens >= 1 and batch sizes >= 1")
    cuda = device == "cuda"
    rows: list[GenerateFigures] = []
    for precision in precisions:
        model, weights_gib = load(precision)
        for batch in batches:
            # The warmup walks through exactly the shapes the measurement will see: kernels such as cuDNN
            # attention build an execution plan per new KV length, and a short warmup left that cost inside
            # the first precision's timing (7B bf16 decode looked 2x slower than NF4 for that reason alone).
            measure_generation(
                model, batch=batch, prompt_len=prompt_len, new_tokens=new_tokens, device=device, seed=seed
            )
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            prefill, decode = measure_generation(
                model, batch=batch, prompt_len=prompt_len, new_tokens=new_tokens, device=device, seed=seed + 1
            )
            rows.append(
                GenerateFigures(
                    precision=precision,
                    batch=batch,
                    prompt_len=prompt_len,
                    new_tokens=new_tokens,
                    prefill_tokens_per_s=batch * prompt_len / prefill,
                    decode_tokens_per_s=batch * new_tokens / decode,
                    prefill_s=prefill,
                    decode_s=decode,
                    peak_allocated_gib=torch.cuda.max_memory_allocated() / GIB if cuda else None,
                    peak_reserved_gib=torch.cuda.max_memory_reserved() / GIB if cuda else None,
                    weights_gib=weights_gib,
                )
            )
        del model
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return GenerateResult(model=name, device=device, rows=rows, hardware=hardware_info(device).to_dict())


def shape_loader(shape: str, *, device: str, seed: int = 0) -> Callable[[str], tuple[Any, float]]:
    """A ``load`` for :func:`run_generate_benchmark` that builds a random model of ``shape``."""
    from qlora_eval.bench.builder import build_random_model
    from qlora_eval.bench.shapes import shape_config

    _, config = shape_config(shape)

    def load(precision: str) -> tuple[Any, float]:
        if precision not in ("bf16", "nf4"):
            raise ConfigError(f"precision must be bf16 or nf4, got {precision!r}")
        built = build_random_model(config, quantize=precision == "nf4", device=device, seed=seed)
        return built.model, built.weights_bytes / GIB

    return load

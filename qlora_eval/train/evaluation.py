"""Evaluation during training (MMLU, as the QLoRA script's ``--do_mmlu_eval``), injected as a callable.

The training engine does not import the benchmark engine: the caller (the CLI) builds an
``Evaluator`` from ``qlora_eval.bench.mmlu`` and passes it to ``train``. Every ``mmlu_every`` steps
the main process puts the model in eval mode on masked (SDPA) attention, calls the evaluator, and
adds its figures to the step's record as ``mmlu_<name>``, so they go to ``training.json``,
the checkpoints' history and the loss plot.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from qlora_eval.errors import ConfigError
from qlora_eval.train import attention
from qlora_eval.train.config import TrainConfig

# (peft model, tokenizer) -> figures, e.g. {"accuracy": 0.31, "n": 200}
Evaluator = Callable[[Any, Any], dict[str, float]]
PREFIX = "mmlu_"


def check(config: TrainConfig, evaluator: Evaluator | None) -> None:
    """Fail before training when ``mmlu_every`` is set but nothing can evaluate.

    Raises:
        ConfigError: ``--mmlu-every`` without an evaluator.
    """
    if config.mmlu_every is not None and evaluator is None:
        raise ConfigError("--mmlu-every needs an MMLU evaluator (the CLI builds it from --mmlu-data)")


def due(config: TrainConfig, step: int) -> bool:
    """Whether optimizer step ``step`` (1-based) ends with an evaluation."""
    return config.mmlu_every is not None and (step % config.mmlu_every == 0 or step == config.max_steps)


def run(model: Any, tokenizer: Any, evaluator: Evaluator, config: TrainConfig) -> dict[str, float]:
    """Evaluate the adapter as it is now; the model is back in training mode and attention afterwards."""
    import torch

    start = time.perf_counter()
    attention.for_unpacked_calls(model)  # the evaluator pads and masks its batches
    model.eval()
    try:
        with torch.no_grad(), _no_cpu_repacking(model):
            figures = evaluator(model, tokenizer)
    finally:
        model.train()
        kind = attention.resolve(attention.AttentionKind(config.attention), config.packing)
        attention.apply(model.get_base_model() if hasattr(model, "get_base_model") else model, kind)
    out = {PREFIX + name: float(value) for name, value in figures.items()}
    out[PREFIX + "seconds"] = time.perf_counter() - start
    return out


def evaluations(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """The step records that carry evaluation figures: ``{step, mmlu_...}`` each."""
    return [
        {"step": h["step"], **{k: v for k, v in h.items() if k.startswith(PREFIX)}}
        for h in history
        if any(k.startswith(PREFIX) for k in h)
    ]



@contextlib.contextmanager
def _no_cpu_repacking(model: Any) -> Iterator[None]:
    """Keep bitsandbytes' 4-bit layers from repacking their weights for CPU inference while evaluating.

    On CPUs with AVX512-BF16, an eval-mode ``Linear4bit`` under ``no_grad`` repacks its weight into a
    CPU inference format once and for all (bitsandbytes 0.4x-0.5x; the scorer puts the model in eval
    mode itself); back in training the layer then runs a kernel without autograd and the gradient
    through the frozen base is lost. The layer's ``support_avx512bf16_for_cpu`` flag gates that.
    """
    try:
        import bitsandbytes as bnb
    except ImportError:  # a 16/32-bit LoRA run has no 4-bit layers
        yield
        return
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    saved = [getattr(m, "support_avx512bf16_for_cpu", False) for m in layers]
    for m in layers:
        m.support_avx512bf16_for_cpu = False
    try:
        yield
    finally:
        for m, flag in zip(layers, saved, strict=True):
            m.support_avx512bf16_for_cpu = flag

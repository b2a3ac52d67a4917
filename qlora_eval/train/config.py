"""Training settings: one frozen dataclass, the Guanaco presets, and checks on construction.

The values follow the QLoRA paper and its ``scripts/finetune_guanaco_*.sh``: NF4 with double
quantization and bf16 compute, LoRA r=64 / alpha=16 on every linear layer except the output head,
dropout 0.1 (0.05 for 33B/65B), paged AdamW 32-bit, learning rate 2e-4 (1e-4 for 33B/65B) with a
constant schedule after a 3% warmup, max grad norm 0.3, effective batch 16, 1,875 steps, target
length 512. Every field is written to ``training.json``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from enum import Enum
from typing import Any

from qlora_eval.errors import ConfigError


class DatasetFormat(Enum):
    """How the rows of a training file are read (see ``qlora_eval.train.data``)."""

    INPUT_OUTPUT = "input-output"  # {"input": prompt, "output": reply}
    GUANACO = "guanaco"  # {"text": "### Human: ... ### Assistant: ..."}
    ALPACA = "alpaca"  # {"instruction", "input" (optional), "output"}
    CHAT = "chat"  # {"messages": [{"role", "content"}, ...]} rendered with the tokenizer's chat template


OASST1_HUB_ID = "timdettmers/openassistant-guanaco"


@dataclass(frozen=True)
class Preset:
    """Per-model-size values of the Guanaco recipe."""

    learning_rate: float
    lora_dropout: float
    per_device_batch_size: int
    grad_accum: int


# Effective batch 16 everywhere; the split between batch and accumulation only trades memory for speed.
PRESETS: dict[str, Preset] = {
    "guanaco-7b": Preset(learning_rate=2e-4, lora_dropout=0.1, per_device_batch_size=4, grad_accum=4),
    "guanaco-13b": Preset(learning_rate=2e-4, lora_dropout=0.1, per_device_batch_size=4, grad_accum=4),
    "guanaco-33b": Preset(learning_rate=1e-4, lora_dropout=0.05, per_device_batch_size=1, grad_accum=16),
    "guanaco-65b": Preset(learning_rate=1e-4, lora_dropout=0.05, per_device_batch_size=1, grad_accum=16),
}
DEFAULT_PRESET = "guanaco-7b"

# Fields that may differ between a run and its ``--resume`` without breaking exact continuation.
# The token budget, loss and attention change how a step is computed, not what it computes (equal up to
# float rounding). Packing may not change: it decides whether the order is length-grouped.
RESUME_MAY_DIFFER = frozenset(
    {
        "save_every",
        "output_dir",
        "cpu_threads",
        "max_tokens_per_batch",
        "loss",
        "loss_chunk_tokens",
        "attention",
        "mmlu_every",
        "mmlu_limit",
    }
)


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one QLoRA training run.

    Attributes:
        base_model: the model spec text (``smollm2-135m``, ``hf:/path``).
        dataset: ``oasst1`` or a JSONL file.
        dataset_format: how the rows are read.
        output_dir: where the adapter, card, plot and checkpoints go.
        preset: the preset the defaults came from.
        max_steps: optimizer steps.
        per_device_batch_size: sequences per forward pass and process.
        grad_accum: forward passes per optimizer step and process.
        learning_rate: peak learning rate (after warmup).
        warmup_ratio: fraction of ``max_steps`` over which the learning rate rises linearly from 0.
        max_grad_norm: gradient clipping norm.
        weight_decay: AdamW weight decay.
        adam_beta2: AdamW second-moment decay.
        optimizer: the bitsandbytes optimizer class name.
        lora_r, lora_alpha, lora_dropout: the LoRA shape.
        target_modules: module names to adapt; ``None`` means every linear layer but the output head.
        source_max_len: tokens kept of the prompt (the end is kept, nearest the reply).
        target_max_len: tokens kept of the reply, the end-of-sequence token included.
        max_seq_len: an overall cap on prompt + reply tokens, if any.
        train_on_source: compute the loss on prompt tokens too.
        group_by_length: batch sequences of similar length together (less padding).
        shuffle: shuffle the examples each epoch; ``False`` trains them in file order (sequential).
        packing: concatenate a pass's examples into one row without padding (attention stays inside
            each example); passes are then cut by ``max_tokens_per_batch`` instead of a sequence count.
        max_tokens_per_batch: the token budget of one packed pass (the step's examples are unchanged).
        loss: how the head + cross-entropy run: ``chunked`` (no full logits), ``plain`` or ``liger``.
        loss_chunk_tokens: target tokens per chunk of the chunked loss.
        attention: ``auto`` (varlen flash attention on CUDA when packing, else sdpa), ``sdpa`` or ``varlen``.
        mmlu_every: evaluate MMLU every this many optimizer steps (``None``: never).
        mmlu_limit: MMLU validation questions per evaluation.
        gradient_checkpointing: recompute activations in the backward pass (saves memory).
        bits: 4 for the QLoRA recipe (NF4), 16/32 for a plain LoRA baseline.
        double_quant: quantize the quantization constants too.
        compute_dtype: dtype of the 4-bit matmuls (and autocast on CUDA).
        seed: seeds data order, LoRA init and dropout.
        save_every: optimizer steps between checkpoints.
        cpu_threads: torch threads of a CPU run; ``None`` chooses from the idle cores
            (``qlora_eval.models.threads``). Ignored on CUDA.
    """

    base_model: str
    dataset: str
    dataset_format: DatasetFormat
    output_dir: str
    preset: str = DEFAULT_PRESET
    max_steps: int = 1875
    per_device_batch_size: int = 4
    grad_accum: int = 4
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.03
    max_grad_norm: float = 0.3
    weight_decay: float = 0.0
    adam_beta2: float = 0.999
    optimizer: str = "paged_adamw_32bit"
    lora_r: int = 64
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    target_modules: tuple[str, ...] | None = None
    source_max_len: int = 1024
    target_max_len: int = 512
    max_seq_len: int | None = None
    train_on_source: bool = False
    group_by_length: bool = True
    shuffle: bool = True
    packing: bool = True
    max_tokens_per_batch: int = 2048
    loss: str = "chunked"
    loss_chunk_tokens: int = 1024
    attention: str = "auto"
    mmlu_every: int | None = None
    mmlu_limit: int = 200
    gradient_checkpointing: bool = True
    bits: int = 4
    double_quant: bool = True
    compute_dtype: str = "bfloat16"
    seed: int = 42
    save_every: int = 250
    cpu_threads: int | None = None

    def __post_init__(self) -> None:
        positive = {
            "max_steps": self.max_steps,
            "per_device_batch_size": self.per_device_batch_size,
            "grad_accum": self.grad_accum,
            "lora_r": self.lora_r,
            "lora_alpha": self.lora_alpha,
            "source_max_len": self.source_max_len,
            "target_max_len": self.target_max_len,
            "save_every": self.save_every,
            "max_tokens_per_batch": self.max_tokens_per_batch,
            "loss_chunk_tokens": self.loss_chunk_tokens,
            "mmlu_limit": self.mmlu_limit,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.target_max_len < 2:
            raise ConfigError("--target-max-len must be at least 2 (one reply token and the end-of-sequence token)")
        if self.max_seq_len is not None and self.max_seq_len < 8:
            raise ConfigError(f"--max-seq-len must be at least 8, got {self.max_seq_len}")
        if not 0.0 < self.learning_rate < 1.0:
            raise ConfigError(f"--learning-rate must be in (0, 1), got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"--lora-dropout must be in [0, 1), got {self.lora_dropout}")
        if self.max_grad_norm <= 0:
            raise ConfigError(f"--max-grad-norm must be positive, got {self.max_grad_norm}")
        if self.bits not in (4, 16, 32):
            raise ConfigError(f"--bits must be 4, 16 or 32, got {self.bits}")
        if self.compute_dtype not in ("bfloat16", "float16", "float32"):
            raise ConfigError(f"--compute-dtype must be bfloat16, float16 or float32, got {self.compute_dtype!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"--optimizer must be one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.target_modules is not None and not self.target_modules:
            raise ConfigError("--target-modules needs at least one module name")
        if self.preset not in PRESETS:
            raise ConfigError(f"--preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"--loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if self.attention not in ATTENTIONS:
            raise ConfigError(f"--attention must be one of {list(ATTENTIONS)}, got {self.attention!r}")
        if self.mmlu_every is not None and self.mmlu_every < 1:
            raise ConfigError(f"--mmlu-every must be at least 1, got {self.mmlu_every}")
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise ConfigError(f"cpu_threads must be at least 1, got {self.cpu_threads}")

    @property
    def warmup_steps(self) -> int:
        """Warmup length in optimizer steps; at least one step whenever the ratio is positive."""
        return math.ceil(self.warmup_ratio * self.max_steps)

    def effective_batch(self, world_size: int) -> int:
        """Sequences per optimizer step over all processes."""
        return self.per_device_batch_size * self.grad_accum * world_size

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (enums as values, tuples as lists)."""
        data = asdict(self)
        data["dataset_format"] = self.dataset_format.value
        data["target_modules"] = list(self.target_modules) if self.target_modules is not None else None
        data["warmup_steps"] = self.warmup_steps
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of ``to_dict`` (derived keys are ignored)."""
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["dataset_format"] = DatasetFormat(kwargs["dataset_format"])
        if kwargs.get("target_modules") is not None:
            kwargs["target_modules"] = tuple(kwargs["target_modules"])
        return cls(**kwargs)


# --loss and --attention choices (qlora_eval.train.loss.LossKind, qlora_eval.train.attention.AttentionKind)
LOSSES = ("chunked", "plain", "liger")
ATTENTIONS = ("auto", "sdpa", "varlen")

# bitsandbytes optimizer class per name (the names of the transformers ``optim`` option).
OPTIMIZERS: dict[str, str] = {
    "paged_adamw_32bit": "PagedAdamW32bit",
    "paged_adamw_8bit": "PagedAdamW8bit",
    "adamw_32bit": "AdamW32bit",
}


def default_source_max_len(dataset: str, dataset_format: DatasetFormat) -> int:
    """The QLoRA scripts' source length: 16 for the Guanaco text (it has no separate prompt), else 1024."""
    if dataset == "oasst1" or dataset_format is DatasetFormat.GUANACO:
        return 16
    return 1024


def make_config(
    *,
    base_model: str,
    dataset: str,
    dataset_format: DatasetFormat,
    output_dir: str,
    preset: str = DEFAULT_PRESET,
    **overrides: Any,
) -> TrainConfig:
    """Build a config from a preset plus explicit overrides (``None`` values mean "use the preset").

    Raises:
        ConfigError: for an unknown preset, an unknown setting or a bad value.
    """
    if preset not in PRESETS:
        raise ConfigError(f"--preset must be one of {sorted(PRESETS)}, got {preset!r}")
    values: dict[str, Any] = asdict(PRESETS[preset])
    values["source_max_len"] = default_source_max_len(dataset, dataset_format)
    names = {f.name for f in fields(TrainConfig)}
    for key, value in overrides.items():
        if key not in names:
            raise ConfigError(f"unknown training setting {key!r}")
        if value is not None:
            values[key] = value
    return TrainConfig(
        base_model=base_model,
        dataset=dataset,
        dataset_format=dataset_format,
        output_dir=output_dir,
        preset=preset,
        **values,
    )


def differences_for_resume(saved: TrainConfig, now: TrainConfig) -> list[str]:
    """Settings that differ between a checkpoint's run and the resumed run (and would break exactness)."""
    out = []
    for f in fields(TrainConfig):
        if f.name in RESUME_MAY_DIFFER:
            continue
        a, b = getattr(saved, f.name), getattr(now, f.name)
        if a != b:
            out.append(f"{f.name}: checkpoint has {a!r}, now {b!r}")
    return out

"""How to judge: the options every judge kind reads (sampling, concurrency, budget, retries, templates)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qlora_eval.errors import ConfigError
from qlora_eval.models.openai_client import RetryPolicy


@dataclass(frozen=True)
class JudgeOptions:
    """How to judge (every field that changes verdicts is recorded in the judgments' settings).

    Attributes:
        temperature, max_tokens: the openai judge's sampling (a local judge reads one token and ignores them).
        concurrency: openai calls in flight at once.
        budget_usd: stop before spending more than this (None: no limit).
        prices_path: a user price table on top of the shipped one.
        retry: the openai judge's retry policy.
        seed: seeds the backoff jitter.
        pairs: the pairing scheme.
        local_batch_size: prompts per forward pass of a local judge (None: 1 on a CPU, 8 on a GPU).
        template_dir: a folder with judge templates and their manifest (default: the shipped ones).
        batch: judge through the OpenAI Batch API (submit, return, collect on a later run; batch prices).
        judge_templates: the template set: ``qlora-eval`` (ours) or ``qlora-paper`` (the paper's reviewer prompts).
        data_dir: a folder holding the paper's prompt files (offline ``qlora-paper``; else fetched once).
        reuse_imported: a judge whose imported verdicts count as done for the same prompt, models and order.
        retry_invalid: pay again for calls stored as INVALID (kept; the retry is stored beside them).
    """

    temperature: float = 0.0
    max_tokens: int = 1024
    concurrency: int = 4
    budget_usd: float | None = None
    prices_path: Path | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    seed: int = 0
    pairs: str = "all"
    local_batch_size: int | None = None
    template_dir: Path | None = None
    batch: bool = False
    judge_templates: str = "qlora-eval"
    data_dir: Path | None = None
    reuse_imported: str | None = None
    retry_invalid: bool = False

    def __post_init__(self) -> None:
        if self.budget_usd is not None and self.budget_usd < 0:
            raise ConfigError(f"--budget-usd must be >= 0, got {self.budget_usd}")
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency must be >= 1, got {self.concurrency}")
        if self.max_tokens < 1:
            raise ConfigError(f"--max-tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"--temperature must be >= 0, got {self.temperature}")
        if self.local_batch_size is not None and self.local_batch_size < 1:
            raise ConfigError(f"--local-batch-size must be >= 1, got {self.local_batch_size}")

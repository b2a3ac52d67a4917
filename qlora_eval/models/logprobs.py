"""Next-token log-probabilities of a causal LM over left-padded batches: the one implementation.

Used by the local judge (through :meth:`qlora_eval.models.hf.HFChatModel.next_token_logprobs`) and by MMLU
scoring (:mod:`qlora_eval.bench.mmlu`). Rows are padded on the left so every row's last position is its own
last token, and position ids follow the attention mask, so padding never shifts a row's positions: models with
absolute position embeddings (GPT-2, OPT) would otherwise score a padded row differently from the same row
alone (RoPE models are shift-invariant up to rounding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from qlora_eval.errors import ConfigError


def truncate_left(ids: Sequence[int], max_length: int) -> list[int]:
    """Keep the last ``max_length`` tokens: a prompt's end (e.g. "Answer:") always survives."""
    if max_length < 1:
        raise ConfigError(f"max length must be >= 1, got {max_length}")
    return list(ids[-max_length:])


def left_pad(batch: Sequence[Sequence[int]], pad_id: int) -> tuple[list[list[int]], list[list[int]]]:
    """Pad on the left so every row's last token is its prompt's last token; returns (ids, attention mask)."""
    width = max(len(row) for row in batch)
    ids = [[pad_id] * (width - len(row)) + list(row) for row in batch]
    mask = [[0] * (width - len(row)) + [1] * len(row) for row in batch]
    return ids, mask


def next_token_logprobs(
    model: Any,
    sequences: Sequence[Sequence[int]],
    wanted: Sequence[int],
    *,
    pad_id: int,
    batch_size: int = 8,
    max_length: int | None = 2048,
    progress: Callable[[float], None] | None = None,
) -> list[list[float]]:
    """Log-probabilities of the ``wanted`` tokens right after each sequence.

    Sequences are sorted by length (less padding), cut from the left to ``max_length`` (None: never cut),
    padded on the left, with position ids that restart at 0 after each row's padding.

    Args:
        model: a transformers causal LM (or a ``PeftModel`` around one), any device.
        sequences: token ids of each prompt, BOS included if wanted.
        wanted: token ids whose log-probabilities to return.
        pad_id: the id written into padding positions (masked out, so any id works).
        batch_size: rows per forward pass.
        max_length: the longest row kept (from its end); None keeps every row whole.
        progress: called with the number of rows done after each batch.

    Returns:
        One list (in ``wanted`` order) per sequence, in input order: log-softmax over the full vocabulary.
    """
    import torch

    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    wanted_ids = torch.tensor(list(wanted), device=device)
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    out: list[list[float]] = [[] for _ in sequences]
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            rows = [_cut(sequences[i], max_length) for i in chunk]
            ids, mask = left_pad(rows, pad_id)
            input_ids = torch.tensor(ids, device=device)  # (batch, width)
            attention = torch.tensor(mask, device=device)  # (batch, width), 0 on the left padding
            positions = (attention.cumsum(-1) - 1).clamp(min=0)  # (batch, width): 0.. from each row's first token
            logits = model(
                input_ids=input_ids, attention_mask=attention, position_ids=positions, logits_to_keep=1
            ).logits[:, -1, :]  # (batch, vocab)
            logprobs = torch.log_softmax(logits.float(), dim=-1).index_select(-1, wanted_ids).cpu().tolist()
            for index, row in zip(chunk, logprobs, strict=True):
                out[index] = row
            if progress is not None:
                progress(len(chunk))
    return out


def _cut(ids: Sequence[int], max_length: int | None) -> list[int]:
    return list(ids) if max_length is None else truncate_left(ids, max_length)

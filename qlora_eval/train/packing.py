"""Padding-free packing: a micro-batch's examples concatenated into one row, with no padding.

A packed pass is one row of ``T`` tokens holding several examples end to end. ``position_ids``
restart at 0 for every example, which is how transformers (``find_packed_sequence_indices``) and the
varlen attention path (``qlora_eval.train.attention``) keep attention inside each example, so the
math equals running the examples separately. The first label of every example is ignored, so no
token is trained to predict the start of the next example.

Micro-batches are cut by a token budget rather than a sequence count: a pass holds as many of the
step's examples (in order) as fit in ``max_tokens`` tokens, so short conversations no longer run
as tiny, launch-bound passes and long ones no longer drag padding along.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qlora_eval.train.collator import IGNORE_INDEX, TokenizedExample


def token_budget_passes(indices: Sequence[int], lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Split ``indices`` (in order) into passes of at most ``max_tokens`` tokens.

    An example longer than the budget gets a pass of its own (it is never cut: truncation is the
    collator's job and already happened).

    Args:
        indices: the examples of this process's share of one step, in training order.
        lengths: token count of every example (indexed by the values of ``indices``).
        max_tokens: the token budget of one pass.

    Returns:
        The passes, each a non-empty list of example indices; together they hold ``indices`` in order.
    """
    passes: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index in indices:
        n = lengths[index]
        if current and used + n > max_tokens:
            passes.append(current)
            current, used = [], 0
        current.append(index)
        used += n
    if current:
        passes.append(current)
    return passes


def collate_packed(batch: Sequence[TokenizedExample]) -> dict[str, Any]:
    """Concatenate ``batch`` into one row.

    Returns:
        ``input_ids``, ``labels``, ``position_ids`` (each ``[1, T]``, ``T`` the sum of the lengths),
        ``cu_seq_lens`` (``[n + 1]`` int32 offsets of the examples, for varlen attention) and
        ``max_length`` (the longest example, a Python int).
    """
    import torch

    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    offsets = [0]
    for item in batch:
        n = len(item)
        ids.extend(item.input_ids)
        # the first token of an example is never a target: it would be predicted from the previous example
        labels.append(IGNORE_INDEX)
        labels.extend(item.labels[1:])
        positions.extend(range(n))
        offsets.append(offsets[-1] + n)
    return {
        "input_ids": torch.tensor([ids], dtype=torch.long),
        "labels": torch.tensor([labels], dtype=torch.long),
        "position_ids": torch.tensor([positions], dtype=torch.long),
        "cu_seq_lens": torch.tensor(offsets, dtype=torch.int32),
        "max_length": max(len(item) for item in batch),
    }

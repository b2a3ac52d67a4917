"""Tokenization, truncation, loss masking and padding.

Fixes a flaw of the reference collator: there the end-of-sequence token is appended *before*
truncation, so every reply longer than the target length loses it and the model never learns to stop
on long answers. Here the reply is cut first and the end-of-sequence token is always the last target token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qlora_eval.errors import ConfigError
from qlora_eval.train.data import Example

IGNORE_INDEX = -100  # the label value torch's cross-entropy skips


@dataclass(frozen=True)
class TokenizedExample:
    """Token ids and labels of one example (labels are ``IGNORE_INDEX`` where no loss is taken)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def target_tokens(self) -> int:
        """Tokens that carry loss after the one-position shift (the first token is never predicted)."""
        return sum(1 for label in self.labels[1:] if label != IGNORE_INDEX)


@dataclass(frozen=True)
class TokenizeSettings:
    """The truncation and masking settings of the collator."""

    source_max_len: int
    target_max_len: int
    max_seq_len: int | None
    train_on_source: bool


def special_ids(tokenizer: Any) -> tuple[int | None, int]:
    """The tokenizer's (bos, eos) ids.

    Raises:
        ConfigError: when the tokenizer has no end-of-sequence token (the model could never learn to stop).
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ConfigError("the tokenizer has no end-of-sequence token; set eos_token in tokenizer_config.json")
    return tokenizer.bos_token_id, int(eos)


def tokenize_example(example: Example, tokenizer: Any, settings: TokenizeSettings) -> TokenizedExample:
    """Tokenize, truncate and mask one example.

    The source (prompt) keeps its *last* ``source_max_len`` tokens (after the beginning-of-sequence
    token), because the end of the prompt is what the reply continues. The target keeps its first
    ``target_max_len - 1`` tokens plus the end-of-sequence token. ``max_seq_len`` then caps the sum:
    the source gets what the target leaves, but never less than half the cap.
    """
    bos, eos = special_ids(tokenizer)
    source: list[tuple[int, bool]] = []
    target: list[tuple[int, bool]] = []
    for index, segment in enumerate(example.segments):
        ids = tokenizer(segment.text, add_special_tokens=False)["input_ids"]
        bucket = target if index >= example.target_start else source
        bucket.extend((int(token), segment.trainable) for token in ids)

    head = [(bos, False)] if bos is not None else []
    source = source[max(0, len(source) - (settings.source_max_len - len(head))) :]
    target = target[: settings.target_max_len - 1]
    if settings.max_seq_len is not None:
        cap = settings.max_seq_len
        total = len(head) + len(source) + len(target) + 1
        if total > cap:
            keep_source = min(len(head) + len(source), max(cap - len(target) - 1, cap // 2))
            keep_target = cap - keep_source - 1
            source = source[len(source) - max(0, keep_source - len(head)) :] if keep_source > len(head) else []
            target = target[:keep_target]
    pieces = [*head, *source, *target, (eos, True)]
    input_ids = tuple(token for token, _ in pieces)
    labels = tuple(token if (trainable or settings.train_on_source) else IGNORE_INDEX for token, trainable in pieces)
    return TokenizedExample(input_ids, labels)


def collate(batch: Sequence[TokenizedExample], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch into ``input_ids``, ``attention_mask`` and ``labels`` tensors."""
    import torch

    width = max(len(item) for item in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, item in enumerate(batch):
        n = len(item)
        input_ids[row, :n] = torch.tensor(item.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(item.labels, dtype=torch.long)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def pad_id_of(tokenizer: Any) -> int:
    """The padding id; the end-of-sequence id when the tokenizer has no pad token.

    Padded positions are masked out of attention and loss, so the id's value never matters.
    """
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    return special_ids(tokenizer)[1]

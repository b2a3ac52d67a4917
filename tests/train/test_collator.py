"""Golden token-level tests of tokenization, truncation and loss masking (tiny Llama tokenizer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qlora_eval.train.collator import IGNORE_INDEX, TokenizeSettings, collate, tokenize_example
from qlora_eval.train.data import Example, Segment

M = IGNORE_INDEX
BOS, EOS, PAD = 1, 5, 3
PROMPT = "### Human: What is the capital of France? ### Assistant:"
REPLY = " The capital of France is Paris."
# The tiny tokenizer's ids of PROMPT (21 tokens) and REPLY (13 tokens), checked in test_golden_ids.
PROMPT_IDS = [315, 226, 45, 302, 262, 31, 306, 291, 89, 285, 273, 310, 318, 317, 312, 314, 36, 226, 315, 316, 31]
REPLY_IDS = [309, 310, 318, 317, 312, 314, 285, 226, 53, 70, 87, 264, 19]
EXAMPLE = Example((Segment(PROMPT, False), Segment(REPLY, True)), 1, "t:1")


@pytest.fixture(scope="module")
def tokenizer(tiny_llama_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir)


def _settings(
    source: int = 1024, target: int = 512, cap: int | None = None, on_source: bool = False
) -> TokenizeSettings:
    return TokenizeSettings(source_max_len=source, target_max_len=target, max_seq_len=cap, train_on_source=on_source)


def test_golden_ids(tokenizer: Any) -> None:
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (BOS, EOS, PAD)
    assert tokenizer(PROMPT, add_special_tokens=False)["input_ids"] == PROMPT_IDS
    assert tokenizer(REPLY, add_special_tokens=False)["input_ids"] == REPLY_IDS


def test_source_is_masked_and_eos_is_trained(tokenizer: Any) -> None:
    item = tokenize_example(EXAMPLE, tokenizer, _settings())
    assert list(item.input_ids) == [BOS, *PROMPT_IDS, *REPLY_IDS, EOS]
    assert list(item.labels) == [M] * 22 + REPLY_IDS + [EOS]
    assert item.target_tokens == 14


def test_train_on_source_labels_everything(tokenizer: Any) -> None:
    item = tokenize_example(EXAMPLE, tokenizer, _settings(on_source=True))
    assert list(item.labels) == list(item.input_ids)


def test_eos_survives_target_truncation(tokenizer: Any) -> None:
    item = tokenize_example(EXAMPLE, tokenizer, _settings(target=5))
    assert list(item.input_ids) == [BOS, *PROMPT_IDS, 309, 310, 318, 317, EOS]
    assert list(item.labels) == [M] * 22 + [309, 310, 318, 317, EOS]
    assert item.input_ids[-1] == EOS


def test_source_truncation_keeps_bos_and_the_end_of_the_prompt(tokenizer: Any) -> None:
    item = tokenize_example(EXAMPLE, tokenizer, _settings(source=6))
    assert list(item.input_ids) == [BOS, 36, 226, 315, 316, 31, *REPLY_IDS, EOS]
    assert list(item.labels) == [M] * 6 + REPLY_IDS + [EOS]


def test_max_seq_len_caps_the_sum_and_keeps_eos(tokenizer: Any) -> None:
    item = tokenize_example(EXAMPLE, tokenizer, _settings(cap=16))
    # the source gets half the cap (8 = bos + 7), the reply the rest (7 + eos)
    assert list(item.input_ids) == [BOS, *PROMPT_IDS[-7:], *REPLY_IDS[:7], EOS]
    assert list(item.labels) == [M] * 8 + REPLY_IDS[:7] + [EOS]
    short = Example((Segment("Hi", False), Segment(REPLY, True)), 1, "t:2")
    item = tokenize_example(short, tokenizer, _settings(cap=12))
    assert len(item) == 12 and item.input_ids[-1] == EOS
    assert list(item.input_ids[:-1]) == [BOS, *tokenizer("Hi", add_special_tokens=False)["input_ids"], *REPLY_IDS][:11]


def test_guanaco_conversation_masks_human_turns(tokenizer: Any) -> None:
    human, reply = "### Human: Hi ### Assistant:", " Paris"
    example = Example((Segment(human, False), Segment(reply, True)), 0, "t:3")
    h_ids = tokenizer(human, add_special_tokens=False)["input_ids"]
    r_ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
    item = tokenize_example(example, tokenizer, _settings(source=16))
    assert list(item.input_ids) == [BOS, *h_ids, *r_ids, EOS]
    assert list(item.labels) == [M] * (1 + len(h_ids)) + r_ids + [EOS]
    # the whole conversation is the target region: a source limit of 1 token does not cut a really long one
    # (issue 14: this used ``example.segments * 1``, the short case). Six exchanges: far over the source limit.
    turns = example.segments * 6
    long_item = tokenize_example(Example(turns, 0, "t"), tokenizer, _settings(source=1, target=512))
    assert len(h_ids + r_ids) * 6 > 16
    assert list(long_item.input_ids) == [BOS, *(h_ids + r_ids) * 6, EOS]
    assert list(long_item.labels) == [M, *([M] * len(h_ids) + r_ids) * 6, EOS]


def test_collate_right_pads_and_masks(tokenizer: Any) -> None:
    a = tokenize_example(EXAMPLE, tokenizer, _settings())
    b = tokenize_example(EXAMPLE, tokenizer, _settings(target=5))
    batch = collate([b, a], pad_id=PAD)
    assert batch["input_ids"].shape == (2, len(a))
    pad = len(a) - len(b)
    assert batch["input_ids"][0].tolist() == [*b.input_ids, *[PAD] * pad]
    assert batch["labels"][0].tolist() == [*b.labels, *[M] * pad]
    assert batch["attention_mask"][0].tolist() == [1] * len(b) + [0] * pad
    assert batch["attention_mask"][1].tolist() == [1] * len(a)

"""The shared ``next_token_logprobs``: a left-padded batch scores every row as that row alone.

The model here has *absolute* position embeddings (a tiny random GPT-2): padding a row on the left shifts its
positions unless the position ids restart after the padding, so this test fails without that fix. (The tiny
Llama of the other tests uses RoPE, which hides the bug: attention only sees relative positions.)
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from qlora_eval.models.logprobs import left_pad, next_token_logprobs, truncate_left  # noqa: E402

SEQUENCES = [[5, 9, 13, 2, 7, 7, 30, 4, 11], [3, 8], [21, 22, 23, 24, 25], [40], [6, 6, 6, 6, 6, 6, 6, 1]]
WANTED = [1, 2, 3, 50]


@pytest.fixture(scope="module")
def gpt2() -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=64, n_positions=64, n_embd=32, n_layer=2, n_head=4, pad_token_id=0)
    return GPT2LMHeadModel(config).eval()


def test_left_padded_batch_equals_unpadded_rows(gpt2: Any) -> None:
    batched = next_token_logprobs(gpt2, SEQUENCES, WANTED, pad_id=0, batch_size=len(SEQUENCES))
    alone = [next_token_logprobs(gpt2, [s], WANTED, pad_id=0, batch_size=1)[0] for s in SEQUENCES]
    assert len(batched) == len(SEQUENCES) and all(len(row) == len(WANTED) for row in batched)
    for got, want in zip(batched, alone, strict=True):
        assert got == pytest.approx(want, abs=1e-5)


def test_the_reference_is_a_plain_forward_pass(gpt2: Any) -> None:
    """The unpadded rows themselves agree with the model's own forward pass (no mask, default positions)."""
    for sequence in SEQUENCES:
        with torch.inference_mode():
            logits = gpt2(input_ids=torch.tensor([sequence])).logits[0, -1].float()
        want = torch.log_softmax(logits, dim=-1)[WANTED].tolist()
        got = next_token_logprobs(gpt2, [sequence], WANTED, pad_id=0, batch_size=1)[0]
        assert got == pytest.approx(want, abs=1e-5)


def test_padding_would_shift_absolute_positions(gpt2: Any) -> None:
    """Without position ids that follow the mask, a padded row scores differently: the fix is needed here."""
    ids, mask = left_pad(SEQUENCES[:2], pad_id=0)
    with torch.inference_mode():
        naive = gpt2(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits[1, -1].float()
    naive_row = torch.log_softmax(naive, dim=-1)[WANTED].tolist()
    alone = next_token_logprobs(gpt2, [SEQUENCES[1]], WANTED, pad_id=0, batch_size=1)[0]
    assert naive_row != pytest.approx(alone, abs=1e-3)


def test_truncation_and_padding_helpers() -> None:
    assert truncate_left([1, 2, 3, 4], 2) == [3, 4]
    assert left_pad([[1, 2, 3], [4]], 0) == ([[1, 2, 3], [0, 0, 4]], [[1, 1, 1], [0, 0, 1]])


def test_max_length_none_keeps_rows_whole_and_order_is_kept(gpt2: Any) -> None:
    cut = next_token_logprobs(gpt2, SEQUENCES, WANTED, pad_id=0, batch_size=2, max_length=3)
    whole = next_token_logprobs(gpt2, SEQUENCES, WANTED, pad_id=0, batch_size=2, max_length=None)
    short = next_token_logprobs(gpt2, [s[-3:] for s in SEQUENCES], WANTED, pad_id=0, batch_size=2, max_length=None)
    for got, want in zip(cut, short, strict=True):
        assert got == pytest.approx(want, abs=1e-5)
    assert whole[0] != pytest.approx(cut[0], abs=1e-4)  # the 9-token row was really cut to 3

"""MMLU scoring: letter selection, left padding and left truncation, on a stub and on the tiny Llama."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from qlora_eval.bench.mmlu import (  # noqa: E402
    LETTERS,
    MmluItem,
    Mode,
    build_prompts,
    encode_prompts,
    evaluate,
    letter_tokens,
    next_token_logprobs,
    truncate_left,
)


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir: Path) -> Any:
    from qlora_eval.models.hf import load_hf_model
    from qlora_eval.models.spec import parse_model_spec

    return load_hf_model(parse_model_spec(str(tiny_llama_dir)), device="cpu")


class PickingLM(torch.nn.Module):
    """A stub LM that favours the letter named by the last "pick X" in its visible (unpadded) input.

    It records every batch it sees, so the test can check padding side, masks and positions.
    """

    def __init__(self, tokenizer: Any, vocab: int) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.letter_ids = [c[0] for c in letter_tokens(tokenizer, Mode.QLORA).continuations]
        self.calls: list[dict[str, Any]] = []

    def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any, logits_to_keep: int) -> Any:
        self.calls.append({"ids": input_ids.tolist(), "mask": attention_mask.tolist(), "pos": position_ids.tolist()})
        logits = torch.zeros(input_ids.shape[0], 1, self.vocab)
        for row, (ids, mask) in enumerate(zip(input_ids.tolist(), attention_mask.tolist(), strict=True)):
            visible = [t for t, m in zip(ids, mask, strict=True) if m]
            picks = re.findall(r"pick ([ABCD])", self.tokenizer.decode(visible))
            if picks:
                logits[row, 0, self.letter_ids[LETTERS.index(picks[-1])]] = 5.0
        return SimpleNamespace(logits=logits)


def _item(question: str, answer: int) -> MmluItem:
    return MmluItem(subject="virology", question=question, choices=("w", "x", "y", "z"), answer=answer)


def test_letter_selection_left_padding_and_left_truncation(tiny: Any) -> None:
    tokenizer = tiny.tokenizer
    long_question = "The quick brown fox jumps over the lazy dog. " * 40
    items = [
        _item("Short? pick C", 2),  # right
        _item("A bit longer question here? pick A", 0),  # right
        _item(long_question + "pick D", 3),  # right, only if the left side is cut and the end kept
        _item("Another one? pick B", 1),  # right
        _item("Wrong one? pick B", 3),  # wrong
    ]
    stub = PickingLM(tokenizer, vocab=len(tokenizer))
    max_length = 48
    result = evaluate(stub, tokenizer, items, mode=Mode.QLORA, shots=0, batch_size=3, max_length=max_length)
    assert result.n == 5
    assert result.accuracy == pytest.approx(4 / 5)

    answer_tail = tokenizer("\nAnswer:", add_special_tokens=False).input_ids[-2:]
    header = tokenizer("The following are", add_special_tokens=False).input_ids
    widths = []
    for call in stub.calls:
        for ids, mask, pos in zip(call["ids"], call["mask"], call["pos"], strict=True):
            pad = mask.index(1)
            assert mask == [0] * pad + [1] * (len(mask) - pad)  # padding on the left only
            assert ids[-2:] == answer_tail  # every row ends with "Answer:"
            assert pos[pad:] == list(range(len(mask) - pad))  # positions restart after the padding
            widths.append(len(ids))
    assert max(widths) == max_length  # the long prompt was cut ...
    long_call = next(c for c in stub.calls if len(c["ids"][0]) == max_length)
    assert long_call["ids"][0][: len(header) + 1][1:] != header  # ... from the left: its header is gone


def test_truncate_left_keeps_answer(tiny: Any) -> None:
    tokenizer = tiny.tokenizer
    prompt = build_prompts([_item("Why? " * 200, 0)], Mode.HARNESS, 0, None)[0]
    ids = encode_prompts(tokenizer, [prompt], Mode.HARNESS).ids[0]
    kept = truncate_left(ids, 12)
    assert len(kept) == 12 and len(ids) > 100
    assert tokenizer.decode(kept).endswith("D. z\nAnswer:")


def test_left_padded_batches_match_single_prompts(tiny: Any) -> None:
    """Real forward passes: padding on the left with mask-derived positions changes nothing."""
    tokenizer = tiny.tokenizer
    texts = ["Answer: A", "What is the capital of France? Answer:", "1 2 3 4 5 6 7 8 9 0 + - * / = Answer:"]
    sequences = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    wanted = [c[0] for c in letter_tokens(tokenizer, Mode.QLORA).continuations]
    pad = tokenizer.pad_token_id
    alone = next_token_logprobs(tiny.model, sequences, wanted, pad_id=pad, batch_size=1)
    batched = next_token_logprobs(tiny.model, sequences, wanted, pad_id=pad, batch_size=3)
    for row_batched, row_alone in zip(batched, alone, strict=True):
        assert row_batched == pytest.approx(row_alone, abs=1e-4)
    assert alone[0] != pytest.approx(alone[1], abs=1e-3)  # different prompts really give different scores


def _force_token(model: Any, boosts: dict[int, float]) -> Any:
    """Replace the LM head by one with a bias that pushes the given tokens up."""
    head = model.lm_head
    new = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        new.weight.copy_(head.weight)
        new.bias.zero_()
        for token, value in boosts.items():
            new.bias[token] = value
    return new


@pytest.mark.parametrize("mode", [Mode.QLORA, Mode.HARNESS])
def test_forced_letter_is_selected(tiny_llama_dir: Path, mode: Mode) -> None:
    """The tiny model's head is biased toward letter C's continuation: every prediction is C.

    In harness mode the tiny tokenizer splits " C" into two tokens, so this also checks the
    summed log-likelihood over a shared prefix.
    """
    from qlora_eval.models.hf import load_hf_model
    from qlora_eval.models.spec import parse_model_spec

    loaded = load_hf_model(parse_model_spec(str(tiny_llama_dir)), device="cpu")
    continuations = letter_tokens(loaded.tokenizer, mode).continuations
    if mode is Mode.HARNESS:
        assert len(continuations[2]) == 2  # the case this test exists for
    loaded.model.lm_head = _force_token(loaded.model, dict.fromkeys(continuations[2], 30.0))
    items = [_item(f"Question {k}?", k % 4) for k in range(8)]
    result = evaluate(loaded.model, loaded.tokenizer, items, mode=mode, shots=0, batch_size=3)
    assert result.accuracy == pytest.approx(2 / 8)  # exactly the two items whose answer is C
    assert result.n == 8

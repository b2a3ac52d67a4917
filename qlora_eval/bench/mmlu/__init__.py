"""MMLU: data loading, the two prompt formats, letter scoring and aggregation (one module each).

Two ways to evaluate, whose numbers differ and must not be mixed:

* ``qlora`` mode reproduces the QLoRA repository's evaluation: the prompt is the BOS token
  followed by the Hendrycks-style text ("... about  {subject}.\\n\\n" with two spaces, shots as
  "question\\nA. ..\\nAnswer: X\\n\\n"), the answer letters are the tokens of "A".."D" and the
  headline number is the macro average over subjects.
* ``harness`` mode reproduces lm-evaluation-harness's ``mmlu`` task: "... about {subject}.\\n\\n",
  the first 5 ``dev`` examples as shots joined by "\\n\\n", no BOS, the continuations " A".." D",
  and the micro average over questions.

Both score a question by the log-likelihood of each answer's continuation after "Answer:"; for
every tokenizer where the continuation is one token (QLoRA always, the harness for Llama and
GPT-2 style tokenizers) that is the next-token distribution after "Answer:", read in one pass.
Prompts are batched with left padding and cut from the left, so "Answer:" is never lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from qlora_eval.bench.mmlu.aggregate import GroupScore, MmluResult, aggregate
from qlora_eval.bench.mmlu.data import (
    LETTERS,
    SUPERCATEGORIES,
    MmluItem,
    items_from_rows,
    load_hub_split,
    load_qlora_file,
    shots_in_qlora_input,
)
from qlora_eval.bench.mmlu.prompts import Mode, build_prompts, harness_prompt, qlora_prompt
from qlora_eval.bench.mmlu.score import EncodedPrompts, LetterTokens, encode_prompts, letter_tokens, score_letters
from qlora_eval.errors import ConfigError
from qlora_eval.models.logprobs import left_pad, next_token_logprobs, truncate_left

__all__ = [
    "LETTERS",
    "SUPERCATEGORIES",
    "EncodedPrompts",
    "GroupScore",
    "LetterTokens",
    "MmluItem",
    "MmluResult",
    "Mode",
    "aggregate",
    "build_prompts",
    "encode_prompts",
    "evaluate",
    "harness_prompt",
    "items_from_rows",
    "left_pad",
    "letter_tokens",
    "load_hub_split",
    "load_qlora_file",
    "next_token_logprobs",
    "qlora_prompt",
    "score_letters",
    "shots_in_qlora_input",
    "truncate_left",
]


def evaluate(
    model: Any,
    tokenizer: Any,
    items: Sequence[MmluItem],
    *,
    mode: Mode,
    shots: int,
    dev: Sequence[MmluItem] | None = None,
    batch_size: int = 8,
    max_length: int = 2048,
    progress: Callable[[float], None] | None = None,
) -> MmluResult:
    """Score ``items`` with ``model``/``tokenizer`` and aggregate.

    Args:
        model: a causal LM (transformers), any device.
        tokenizer: its tokenizer.
        items: the questions.
        mode: qlora or harness prompt format and tokenization.
        shots: 0 or 5 examples before each question.
        dev: questions to draw shots from (``cais/mmlu`` ``dev`` split), needed for 5 shots
            unless the items are QLoRA five-shot prompts.
        batch_size: prompts per forward pass.
        max_length: prompts longer than this lose tokens from the left.
        progress: called with the (fractional) number of prompts done after each batch.
    """
    prompts = build_prompts(items, mode, shots, dev)
    encoded = encode_prompts(tokenizer, prompts, mode)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise ConfigError("the tokenizer has neither a pad nor an eos token to pad batches with")
    logits = score_letters(
        model, encoded, pad_id=pad_id, batch_size=batch_size, max_length=max_length, progress=progress
    )
    predictions = [max(range(4), key=row.__getitem__) for row in logits]
    return aggregate(items, predictions, mode, shots)

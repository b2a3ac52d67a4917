"""Scoring MMLU prompts: the answer letters' token continuations and their log-likelihoods after each prompt.

The next-token pass itself is :func:`qlora_eval.models.logprobs.next_token_logprobs` (left padding, position
ids that skip the padding, left truncation), shared with the local judge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from qlora_eval.bench.mmlu.data import LETTERS
from qlora_eval.bench.mmlu.prompts import Mode
from qlora_eval.errors import ConfigError
from qlora_eval.models.logprobs import next_token_logprobs


@dataclass(frozen=True)
class LetterTokens:
    """The token continuation that stands for each answer, A to D.

    QLoRA's are single tokens. The harness's " A" is one token for most tokenizers, but some
    split it (e.g. ["Ġ", "C"]); scoring then sums the log-probabilities along the continuation,
    as the harness's log-likelihood does.
    """

    continuations: tuple[tuple[int, ...], ...]

    def prefixes(self) -> list[tuple[int, ...]]:
        """Every proper prefix of a continuation (always including the empty one), shortest first."""
        found = {c[:j] for c in self.continuations for j in range(len(c))}
        return sorted(found, key=lambda p: (len(p), p))


@dataclass(frozen=True)
class EncodedPrompts:
    """Token ids of every prompt and the answer continuations to score after them."""

    ids: list[list[int]]
    letters: LetterTokens


def letter_tokens(tokenizer: Any, mode: Mode) -> LetterTokens:
    """The answers' token continuations as the reference implementation scores them.

    qlora: the first token of ``tokenizer("A", add_special_tokens=False)`` (QLoRA's ``abcd_idx``).
    harness: the continuation " A" of "Answer:", split as the harness does (``encode(ctx + cont)``
    minus ``encode(ctx)``).

    Raises:
        ConfigError: when the tokenizer merges the letter into "Answer:" or two letters coincide.
    """
    continuations: list[tuple[int, ...]] = []
    for letter in LETTERS:
        if mode is Mode.QLORA:
            continuations.append((tokenizer(letter, add_special_tokens=False).input_ids[0],))
            continue
        context = tokenizer("Answer:", add_special_tokens=False).input_ids
        whole = tokenizer("Answer: " + letter, add_special_tokens=False).input_ids
        if whole[: len(context)] != context or len(whole) == len(context):
            raise ConfigError(f"this tokenizer does not encode 'Answer: {letter}' as 'Answer:' followed by more tokens")
        continuations.append(tuple(whole[len(context) :]))
    if len(set(continuations)) != 4 or any(a[: len(b)] == b for a in continuations for b in continuations if a != b):
        raise ConfigError(f"the tokenizer's answer continuations {continuations} are not four distinct non-prefixes")
    return LetterTokens(continuations=tuple(continuations))


def encode_prompts(tokenizer: Any, prompts: Sequence[str], mode: Mode) -> EncodedPrompts:
    """Tokenize prompts the way the chosen reference does (qlora: BOS + text; harness: no BOS)."""
    bos = [tokenizer.bos_token_id] if mode is Mode.QLORA and tokenizer.bos_token_id is not None else []
    ids = [bos + tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
    return EncodedPrompts(ids=ids, letters=letter_tokens(tokenizer, mode))


def score_letters(
    model: Any,
    encoded: EncodedPrompts,
    *,
    pad_id: int,
    batch_size: int = 8,
    max_length: int = 2048,
    progress: Callable[[float], None] | None = None,
) -> list[list[float]]:
    """Log-likelihood of each answer's continuation after each prompt.

    One batched pass per distinct continuation prefix: a single pass (the next-token
    distribution after "Answer:") when every answer is one token.

    Returns:
        ``[loglik A, loglik B, loglik C, loglik D]`` per prompt, in input order.
    """
    continuations = encoded.letters.continuations
    prefixes = encoded.letters.prefixes()
    # logprob[prefix][prompt index][token] for the tokens that follow ``prefix`` in some continuation
    logprob: dict[tuple[int, ...], list[dict[int, float]]] = {}
    for prefix in prefixes:
        following = sorted(
            {c[len(prefix)] for c in continuations if len(c) > len(prefix) and c[: len(prefix)] == prefix}
        )
        sequences = [ids + list(prefix) for ids in encoded.ids]

        def step(done: float) -> None:
            if progress is not None:
                progress(done / len(prefixes))

        rows = next_token_logprobs(
            model, sequences, following, pad_id=pad_id, batch_size=batch_size, max_length=max_length, progress=step
        )
        logprob[prefix] = [dict(zip(following, row, strict=True)) for row in rows]
    return [
        [sum(logprob[c[:j]][i][c[j]] for j in range(len(c))) for c in continuations] for i in range(len(encoded.ids))
    ]

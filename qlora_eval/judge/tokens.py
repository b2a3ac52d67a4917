"""Prompt tokens counted before a paid call, so ``--budget-usd`` is never overspent by a low estimate.

OpenAI models are counted with their real tokenizer (``tiktoken``, the ``openai`` extra). Where it cannot be
used (not installed, a model it does not know such as a vLLM-served local model, or its encoding file cannot
be fetched offline), the count is the conservative fallback :func:`conservative_tokens`, and the dry run and
the budget line say so (``TokenCounter.method``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

# ASCII words merge into multi-character tokens in every BPE vocabulary we know of; digits, symbols and
# non-Latin text often do not.
_PIECES = re.compile(r"[A-Za-z]+|[0-9]+|\s+|[^A-Za-z0-9\s]+")


def conservative_tokens(text: str) -> int:
    """A token count without a tokenizer that leans high: chars/2 for each run of ASCII letters or of
    whitespace (rounded up per run), 1 per digit, and 1 per UTF-8 byte of anything else (punctuation, code
    symbols, non-Latin text: a byte-level BPE token never spans less than one byte)."""
    total = 0
    for match in _PIECES.finditer(text):
        piece = match.group()
        if piece[0].isascii() and (piece[0].isalpha() or piece[0].isspace()):
            total += math.ceil(len(piece) / 2)
        elif piece[0].isascii() and piece[0].isdigit():
            total += len(piece)
        else:
            total += len(piece.encode("utf-8"))
    return total


@dataclass(frozen=True)
class TokenCounter:
    """How prompt tokens are counted before a call.

    Attributes:
        method: for the dry run and budget lines (``tiktoken o200k_base`` or the fallback and why).
        count: tokens of one text.
        exact: whether ``count`` is the model's own tokenizer.
    """

    method: str
    count: Callable[[str], int]
    exact: bool


def fallback_counter(reason: str) -> TokenCounter:
    """The conservative counter, with the reason it is used."""
    return TokenCounter(
        f"conservative estimate: chars/2 for ASCII words and spaces, 1 per digit, 1 per byte otherwise ({reason})",
        conservative_tokens,
        exact=False,
    )


@functools.lru_cache(maxsize=16)
def token_counter(model: str) -> TokenCounter:
    """The counter for an OpenAI-compatible model name: tiktoken's encoding for it, else the fallback."""
    try:
        import tiktoken
    except ImportError:
        return fallback_counter("tiktoken is not installed: pip install 'qlora-eval[openai]'")
    try:
        encoding = tiktoken.encoding_for_model(model)
    except KeyError:
        return fallback_counter(f"tiktoken does not know the model {model!r}")
    except Exception as exc:  # tiktoken fetches its encoding files over the network once: any failure there
        return fallback_counter(f"tiktoken could not load the encoding for {model!r}: {type(exc).__name__}")
    return TokenCounter(
        f"tiktoken {encoding.name}", lambda text: len(encoding.encode(text, disallowed_special=())), exact=True
    )

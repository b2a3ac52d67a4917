"""A deterministic offline stand-in model FOR TESTS ONLY (never reachable from a model spec).

``DummyChatModel`` answers instantly with text that depends only on its name, the seed and the
conversation, so tests of other engines (judging, rating, reports, the generation runner) run without
loading any model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from qlora_eval.models.base import ChatModel, Completion, is_greedy, row_seed
from qlora_eval.types import GenerationSettings, Message

_WORDS = [
    "the",
    "answer",
    "is",
    "clear",
    "because",
    "every",
    "part",
    "fits",
    "together",
    "and",
    "the",
    "result",
    "follows",
    "from",
    "simple",
    "steps",
    "first",
    "consider",
    "the",
    "question",
    "then",
    "weigh",
    "the",
    "options",
    "and",
    "finally",
    "choose",
    "the",
    "best",
    "one",
]


class DummyChatModel(ChatModel):
    """Test stand-in: answers ``"<name> answers: <question>. <words>"`` deterministically.

    The words after the echoed question are drawn from a fixed list by a hash of the model name,
    the row seed (greedy: seed ignored) and the conversation; ``max_new_tokens`` bounds the word
    count (one word = one token here) and stop strings cut the text.

    Attributes:
        calls: how many conversations it has answered (tests check resumption with it).
    """

    def __init__(self, name: str = "dummy", *, words: int = 12) -> None:
        self._name = name
        self._words = words
        self.calls = 0

    @property
    def name(self) -> str:
        return self._name

    def generate(
        self,
        prompts: Sequence[Sequence[Message]],
        settings: GenerationSettings,
        *,
        stop: Sequence[str] = (),
    ) -> list[Completion]:
        out = []
        for turns in prompts:
            self.calls += 1
            seed = 0 if is_greedy(settings) else row_seed(settings, turns)
            digest = hashlib.sha256(f"{self._name}|{seed}|{turns[-1].content}".encode()).digest()
            words = [_WORDS[b % len(_WORDS)] for b in digest[: self._words]]
            body = " ".join([f"{self._name} answers: {turns[-1].content}", *words])
            tokens = body.split()[: settings.max_new_tokens]
            text = " ".join(tokens)
            for s in stop:
                if s in text:
                    text = text[: text.index(s)]
            prompt_tokens = sum(len(m.content.split()) for m in turns)
            out.append(
                Completion(text=text.strip(), prompt_tokens=prompt_tokens, completion_tokens=len(tokens), latency_s=0.0)
            )
        return out

"""The model backend interface: every backend answers a batch of conversations.

Backends (``hf``, ``openai``, ``vllm`` and the test stand-in ``dummy``) implement :class:`ChatModel`.
Nothing here imports a heavy package.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from qlora_eval.models.threads import ThreadChoice
from qlora_eval.types import GenerationSettings, Message, canonical_json


@dataclass(frozen=True)
class Completion:
    """One generated answer.

    Attributes:
        text: the answer only (prompt removed, cut before any stop string, stripped of whitespace).
        prompt_tokens: tokens of the formatted prompt.
        completion_tokens: tokens generated for this answer (the EOS token included when one was produced).
        latency_s: wall-clock seconds the call that produced this answer took (for batched backends,
            the whole batch's time: the time the caller waited for this answer).
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float


class ChatModel(ABC):
    """A model that answers conversations in batches."""

    @property
    @abstractmethod
    def name(self) -> str:
        """Display name (the spec's ``name=`` option, else the spec text)."""

    @abstractmethod
    def generate(
        self,
        prompts: Sequence[Sequence[Message]],
        settings: GenerationSettings,
        *,
        stop: Sequence[str] = (),
    ) -> list[Completion]:
        """Answer each conversation (whose last message is the user's) once.

        Args:
            prompts: the conversations, each a sequence of messages ending with a user turn.
            settings: sampling settings; ``do_sample=False`` or ``temperature == 0`` means greedy decoding.
            stop: extra stop strings (the backend adds its chat format's own, e.g. ``### Human:``).

        Returns:
            One completion per conversation, in order.
        """

    @property
    def cpu_threads(self) -> ThreadChoice | None:
        """The torch thread count a local model runs with on CPU and why; None for other backends and CUDA."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to release
        """Release what the backend holds (engine processes, GPU memory)."""

    def __enter__(self) -> ChatModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_greedy(settings: GenerationSettings) -> bool:
    """Whether the settings ask for greedy decoding (no sampling)."""
    return not settings.do_sample or settings.temperature == 0


def row_seed(settings: GenerationSettings, turns: Sequence[Message]) -> int:
    """The sampling seed of one conversation: derived from ``settings.seed`` and the conversation's text.

    Seeding each row from its own content (not its position in a batch) makes a sample independent
    of which other prompts share its batch.
    """
    payload = canonical_json([settings.seed, [m.to_dict() for m in turns]])
    return int.from_bytes(hashlib.sha256(payload.encode("utf-8")).digest()[:8], "big") & (2**63 - 1)

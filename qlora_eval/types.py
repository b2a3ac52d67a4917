"""Core records shared by every layer (L0: stdlib only).

All records are frozen dataclasses; categorical values are enums. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any


def sha256_text(text: str) -> str:
    """Hex sha256 of a UTF-8 string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the form every content hash is taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_key(*parts: Any) -> str:
    """sha256 of the canonical JSON of ``parts``: the unique key of answers and judgments."""
    return sha256_text(canonical_json(list(parts)))


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string (what the store keeps)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class Role(Enum):
    """Who speaks a chat message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass(frozen=True)
class Message:
    """One chat turn."""

    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role.value, "content": self.content}


@dataclass(frozen=True)
class Prompt:
    """A benchmark prompt: a conversation whose last message is the user's turn to answer.

    Attributes:
        prompt_set: name of the set (``vicuna``, ``oa``, ``demo`` or a user file's name).
        prompt_id: the id inside the set (string, as in the source).
        turns: the conversation in order; the last one has role USER.
        category: the set's category label (Vicuna: generic, coding, math, ...), if any.
        reference: a reference answer (OA sets carry one), if any.
    """

    prompt_set: str
    prompt_id: str
    turns: tuple[Message, ...]
    category: str | None = None
    reference: str | None = None

    def __post_init__(self) -> None:
        if not self.turns:
            raise ValueError(f"prompt {self.prompt_set}/{self.prompt_id} has no turns")
        if self.turns[-1].role is not Role.USER:
            raise ValueError(f"prompt {self.prompt_set}/{self.prompt_id} must end with a user turn")

    @property
    def question(self) -> str:
        """The last user message: what the answers respond to."""
        return self.turns[-1].content

    @property
    def content_hash(self) -> str:
        """sha256 of the turns; changes when the prompt's text changes."""
        return content_key([t.to_dict() for t in self.turns])


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling settings recorded with every answer (defaults follow the QLoRA paper)."""

    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 512
    seed: int = 0
    do_sample: bool = True

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed,
            "do_sample": self.do_sample,
        }


@dataclass(frozen=True)
class Answer:
    """One model's answer to one prompt.

    ``answer_key`` is the content key of (model, model spec, prompt set, prompt id, prompt hash,
    settings): an answer with the same key is reused instead of generated again.
    """

    model: str
    model_spec: str
    prompt_set: str
    prompt_id: str
    prompt_hash: str
    text: str
    settings: dict[str, Any]
    prompt_tokens: int | None = None
    answer_tokens: int | None = None
    latency_s: float | None = None
    created_at: str = field(default_factory=utc_now)

    @staticmethod
    def key_for(
        model: str, model_spec: str, prompt_set: str, prompt_id: str, prompt_hash: str, settings: dict[str, Any]
    ) -> str:
        return content_key("answer", model, model_spec, prompt_set, prompt_id, prompt_hash, settings)

    @property
    def answer_key(self) -> str:
        return self.key_for(
            self.model, self.model_spec, self.prompt_set, self.prompt_id, self.prompt_hash, self.settings
        )


class Verdict(Enum):
    """A pairwise verdict about the answer shown first (A) and second (B)."""

    A = "A"
    B = "B"
    TIE = "tie"
    BOTH_BAD = "both_bad"
    INVALID = "invalid"

    @property
    def score_a(self) -> float:
        """Score of the first-shown answer: 1 win, 0 loss, 0.5 tie or both bad.

        Raises:
            ValueError: for INVALID, which has no score and must be counted, not rated.
        """
        if self is Verdict.INVALID:
            raise ValueError("an INVALID verdict has no score; count it instead")
        return {Verdict.A: 1.0, Verdict.B: 0.0, Verdict.TIE: 0.5, Verdict.BOTH_BAD: 0.5}[self]

    def swapped(self) -> Verdict:
        """The same verdict seen from the other side."""
        return {Verdict.A: Verdict.B, Verdict.B: Verdict.A}.get(self, self)


class Order(Enum):
    """Which of a pair's two presentations a judgment used.

    FORWARD shows the alphabetically first model's answer first; SWAPPED the other one.
    Every pair is judged in both orders to cancel position bias.
    """

    FORWARD = "forward"
    SWAPPED = "swapped"

    @staticmethod
    def of(model_shown_first: str, model_shown_second: str) -> Order:
        return Order.FORWARD if model_shown_first <= model_shown_second else Order.SWAPPED


@dataclass(frozen=True)
class Judgment:
    """One stored verdict: a judge compared the answers of ``model_a`` (shown first) and ``model_b``.

    Attributes:
        judge: judge id, e.g. ``openai:gpt-4``, ``local:smollm2-135m``, ``human:alice``.
        model_a: the model whose answer was shown first (position 1).
        model_b: the model whose answer was shown second.
        prompt_set, prompt_id: which prompt.
        verdict: the verdict, about the shown order (A = first shown is better).
        order: FORWARD or SWAPPED relative to the alphabetical pair order.
        template_hash: sha256 of the judge prompt template ("" for imports without one).
        answer_a_key, answer_b_key: keys of the stored answers, if known (imports may lack them).
        rationale: the judge's explanation (raw text for INVALID verdicts).
        settings: judge sampling settings.
        cost_usd, latency_s, prompt_tokens, completion_tokens: what the call cost.
        source: where an imported judgment came from (file path), if imported.
    """

    judge: str
    model_a: str
    model_b: str
    prompt_set: str
    prompt_id: str
    verdict: Verdict
    order: Order
    template_hash: str = ""
    answer_a_key: str | None = None
    answer_b_key: str | None = None
    rationale: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    cost_usd: float = 0.0
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    source: str | None = None
    created_at: str = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        if self.model_a == self.model_b:
            raise ValueError(f"a judgment needs two different models, got {self.model_a!r} twice")

    @staticmethod
    def key_for(
        judge: str,
        template_hash: str,
        prompt_set: str,
        prompt_id: str,
        answer_a: str,
        answer_b: str,
        order: Order,
        settings: dict[str, Any],
    ) -> str:
        """The content key: the same judge call on the same inputs always maps to the same key.

        ``answer_a``/``answer_b`` are answer keys when known, else model names (imports).
        """
        return content_key(
            "judgment", judge, template_hash, prompt_set, prompt_id, answer_a, answer_b, order.value, settings
        )

    @property
    def judgment_key(self) -> str:
        return self.key_for(
            self.judge,
            self.template_hash,
            self.prompt_set,
            self.prompt_id,
            self.answer_a_key or self.model_a,
            self.answer_b_key or self.model_b,
            self.order,
            self.settings,
        )

    def to_battle(self) -> Battle:
        """The battle this judgment records (INVALID verdicts included; the rater counts them)."""
        return Battle(
            model_a=self.model_a,
            model_b=self.model_b,
            verdict=self.verdict,
            prompt_id=f"{self.prompt_set}/{self.prompt_id}",
            judge=self.judge,
        )


@dataclass(frozen=True)
class Battle:
    """The minimal record the rating engine needs: who met whom, on which prompt, and the outcome.

    ``model_a`` was shown first; ``verdict`` is about that order.
    """

    model_a: str
    model_b: str
    verdict: Verdict
    prompt_id: str
    judge: str = ""


@dataclass(frozen=True)
class Rating:
    """One model's place in a ranking."""

    model: str
    rating: float
    se: float
    ci_low: float
    ci_high: float
    rank: int
    wins: int
    losses: int
    ties: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "rating": self.rating,
            "se": self.se,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "rank": self.rank,
            "wins": self.wins,
            "losses": self.losses,
            "ties": self.ties,
        }


@dataclass(frozen=True)
class RelativeJudgment:
    """One call of the relative protocol: the judge scored each of the two shown answers (the paper: 1 to 10).

    A record of its own, not a ``Judgment``: a pair of scores is not a pairwise verdict, and keeping the two
    apart (their own store table) means Elo/Bradley-Terry rankings can never read score pairs by mistake.

    Attributes:
        judge: judge id, e.g. ``gpt-4``.
        model_a: the model whose answer was shown first (position 1); model_b: shown second.
        prompt_set, prompt_id: which prompt.
        scores: (score of the answer shown first, score of the answer shown second); ``None`` when the
            judge's reply could not be parsed: an INVALID call, counted and never scored.
        order: FORWARD or SWAPPED relative to the alphabetical pair order.
        template_hash: sha256 of the judge prompt template ("" for imports without one).
        answer_a_key, answer_b_key: keys of the stored answers that were shown.
        rationale: the judge's reply.
        settings: judge sampling settings.
        cost_usd, latency_s, prompt_tokens, completion_tokens: what the call cost.
        source: where an imported judgment came from (``file:line``), if imported.
    """

    judge: str
    model_a: str
    model_b: str
    prompt_set: str
    prompt_id: str
    scores: tuple[float, float] | None
    order: Order
    template_hash: str = ""
    answer_a_key: str | None = None
    answer_b_key: str | None = None
    rationale: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    cost_usd: float = 0.0
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    source: str | None = None
    created_at: str = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        if self.model_a == self.model_b:
            raise ValueError(f"a judgment needs two different models, got {self.model_a!r} twice")

    @property
    def is_invalid(self) -> bool:
        """True when the reply had no parsable score pair (counted, never scored)."""
        return self.scores is None

    @property
    def judgment_key(self) -> str:
        """The content key: the same relative call on the same inputs always maps to the same key."""
        return content_key(
            "relative",
            self.judge,
            self.template_hash,
            self.prompt_set,
            self.prompt_id,
            self.answer_a_key or self.model_a,
            self.answer_b_key or self.model_b,
            self.order.value,
            self.settings,
        )

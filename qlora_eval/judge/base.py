"""The judge interface and the records a judging run passes around.

A judge turns :class:`JudgeRequest` objects (a prompt, two answers in a fixed order, the rendered template)
into :class:`JudgeOutcome` objects: a :class:`~qlora_eval.types.Judgment` to store, or a failure that is
recorded and retried by the next run. Batching, concurrency, budgets and storing are the runner's job
(``qlora_eval.judge.runner``); a judge only calls its model.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qlora_eval.judge.templates import JudgeTemplate
from qlora_eval.models.threads import ThreadChoice
from qlora_eval.types import Answer, Judgment, Message, Order, Prompt, Verdict

#: Characters per token used to estimate prompt tokens before a call (the usual rule of thumb for English
#: text with GPT tokenizers; code and non-Latin scripts use more tokens, so estimates run low for them).
CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True)
class JudgeRequest:
    """One judge call to make: ``answer_a`` is shown first (position 1), ``answer_b`` second.

    Attributes:
        key: the judgment's content key (``Judgment.key_for``), computed before any call.
        prompt: the prompt both answers respond to.
        answer_a, answer_b: the answers in the order shown.
        order: FORWARD when ``answer_a``'s model sorts first, else SWAPPED.
        template: the judge template chosen by the prompt's category.
        messages: the rendered judge prompt.
        retry: 0 for a first call; n for the n-th paid retry of a call stored as INVALID (``--retry-invalid``):
            ``{"retry": n}`` joins the judgment's settings, so it gets its own key and the INVALID one stays.
    """

    key: str
    prompt: Prompt
    answer_a: Answer
    answer_b: Answer
    order: Order
    template: JudgeTemplate
    messages: tuple[Message, ...]
    retry: int = 0

    @property
    def prompt_chars(self) -> int:
        return sum(len(m.content) for m in self.messages)

    def judgment(
        self,
        judge: str,
        settings: dict[str, Any],
        verdict: Verdict,
        rationale: str,
        *,
        cost_usd: float = 0.0,
        latency_s: float | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> Judgment:
        """The judgment record for this request (its key equals ``self.key``)."""
        return Judgment(
            judge=judge,
            model_a=self.answer_a.model,
            model_b=self.answer_b.model,
            prompt_set=self.prompt.prompt_set,
            prompt_id=self.prompt.prompt_id,
            verdict=verdict,
            order=self.order,
            template_hash=self.template.sha256,
            answer_a_key=self.answer_a.answer_key,
            answer_b_key=self.answer_b.answer_key,
            rationale=rationale,
            settings={**settings, "retry": self.retry} if self.retry else settings,
            cost_usd=cost_usd,
            latency_s=latency_s,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )


@dataclass(frozen=True)
class JudgeOutcome:
    """What became of one request.

    Exactly one of ``judgment`` (store it) and ``error`` (record the failure; the next run retries) is set.

    Attributes:
        request: the request.
        judgment: the verdict to store, if the judge produced one (INVALID included).
        error: why no verdict was produced, after the retry budget.
        attempts: HTTP (or model) calls this request took, re-asks and retries included.
        cost_usd: dollars the calls cost.
        reasked: whether the judge was asked a second time because the first reply had no verdict.
    """

    request: JudgeRequest
    judgment: Judgment | None
    error: str | None
    attempts: int
    cost_usd: float = 0.0
    reasked: bool = False

    def __post_init__(self) -> None:
        if (self.judgment is None) == (self.error is None):
            raise ValueError("a JudgeOutcome holds either a judgment or an error")
        if self.error is not None and not self.error.strip():
            raise ValueError("a judge failure needs a non-empty error message")


@dataclass
class Budget:
    """A thread-safe spending limit in dollars: calls reserve their estimated cost before they start.

    ``limit_usd`` of None means unlimited (spending is still counted).
    """

    limit_usd: float | None
    spent_usd: float = 0.0
    reserved_usd: float = 0.0
    refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def try_reserve(self, estimate_usd: float) -> bool:
        """Reserve ``estimate_usd`` if spent + in flight + it stays within the limit; False (and count) if not."""
        with self._lock:
            if self.limit_usd is not None and self.spent_usd + self.reserved_usd + estimate_usd > self.limit_usd:
                self.refused += 1
                return False
            self.reserved_usd += estimate_usd
            return True

    def settle(self, estimate_usd: float, actual_usd: float) -> None:
        """Replace a reservation by what the call really cost."""
        with self._lock:
            self.reserved_usd = max(0.0, self.reserved_usd - estimate_usd)
            self.spent_usd += actual_usd


class Judge(ABC):
    """A pairwise judge: compares batches of requests.

    Attributes:
        judge_id: recorded with every judgment, e.g. ``openai:gpt-4`` or ``local:smollm2-135m``.
        batch_size: how many requests one :meth:`judge_batch` call takes.
        concurrency: how many batches may run at once (threads).
    """

    judge_id: str
    batch_size: int = 1
    concurrency: int = 1

    @property
    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Everything about the judge that changes its verdicts (part of the never-pay-twice key)."""

    @abstractmethod
    def estimate_usd(self, request: JudgeRequest) -> float:
        """An upper estimate of one request's cost before it is made (0 for free judges)."""

    @abstractmethod
    def judge_batch(self, requests: Sequence[JudgeRequest], budget: Budget) -> list[JudgeOutcome]:
        """Judge the requests; one outcome per request, in order. Never raises for one bad request.

        Raises:
            BackendError: for failures that no retry can fix (bad API key, unknown model); the run stops.
        """

    @property
    def cpu_threads(self) -> ThreadChoice | None:
        """The torch thread count a local judge runs with on CPU and why; None for API judges and CUDA."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the judge's model or client."""

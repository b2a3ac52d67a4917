"""A judge that runs a local transformers model and reads its verdict from next-token probabilities.

It gets the same judge prompt as the API judges. Instead of letting a small model write an explanation (which
it rarely ends with a clean verdict line), the judge's reply is started with :data:`ASSISTANT_PREFIX` and the
probabilities of the next token being "1", "2" or "3" decide, so it never fails to parse.

Small models put most of that probability on "1" whatever the answers say (a fixed preference for the first
option). The judge therefore applies *contextual calibration* (Zhao et al., 2021, "Calibrate Before Use"): the
same template filled with "N/A" for the question and both answers gives the model's content-free preference
``q``; each verdict takes the argmax of ``p / q`` (renormalised). Raw and calibrated probabilities are the
judgment's rationale, so a reader sees how little separated the options.

Calibration does not remove the position preference (it differs from prompt to prompt), so the judge also
averages over both orders before deciding: p(answer 1 better) = mean of the calibrated P("1") shown in this
order and P("2") shown swapped (ties alike). Each order is scored once (the mirror of a request is cached for
the request that shows it), so this costs no extra forward pass when both orders are judged, and the two orders
of a pair get mirrored verdicts. The rationale gives both the single-order and the averaged verdict and says
when averaging changed it (:func:`averaging_changes` counts those).

A 135M-parameter judge is weak even so; it exists so the tournament runs offline. The report names the judge
and shows its diagnostics (first-position win rate, swap consistency).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qlora_eval.errors import ConfigError
from qlora_eval.judge.base import Budget, Judge, JudgeOutcome, JudgeRequest
from qlora_eval.judge.kind import JudgeKind, JudgeSpec
from qlora_eval.judge.options import JudgeOptions
from qlora_eval.judge.pricing import Price, PriceTable
from qlora_eval.judge.templates import JudgeTemplate
from qlora_eval.models.threads import ThreadChoice
from qlora_eval.types import Judgment, Message, Verdict

#: The start of the judge's reply, after which the next token is read. It ends with a space because tokenizers
#: that split digits (SmolLM2, Llama) write ": 1" as ":", " ", "1": without it the digits get almost no mass.
ASSISTANT_PREFIX = "Final verdict (1, 2 or 3): "
#: What replaces the question and both answers for the content-free calibration prompt.
CONTENT_FREE = "N/A"
CANDIDATES = ("1", "2", "3")
_VERDICTS = (Verdict.A, Verdict.B, Verdict.TIE)
DEFAULT_LOCAL_JUDGE = "smollm2-135m"
#: How both orders are combined (recorded in the settings): a pair's two presentations get mirrored verdicts.
ORDER_AVERAGING = (
    "p(answer 1 better) = mean of calibrated P('1') in this order and P('2') in the swapped order; P('3') likewise"
)
#: Marks the rationale of a verdict that differs from what this order alone would have given.
AVERAGING_CHANGED = "Averaging changed the verdict."


def local_judge_settings(model_spec: str) -> dict[str, Any]:
    """The settings recorded with (and keying) every judgment of a local judge."""
    return {
        "protocol": "pairwise-3class-next-token",
        "model": model_spec,
        "assistant_prefix": ASSISTANT_PREFIX,
        "candidates": list(CANDIDATES),
        "calibration": f"contextual: divide by the probabilities for a template filled with {CONTENT_FREE!r}",
        "order_averaging": ORDER_AVERAGING,
    }


def averaging_changes(judgments: Sequence[Judgment]) -> tuple[int, int]:
    """(verdicts that order averaging changed, verdicts of the averaging next-token judge) among ``judgments``."""
    ours = [j for j in judgments if j.settings.get("order_averaging") == ORDER_AVERAGING]
    return sum(AVERAGING_CHANGED in j.rationale for j in ours), len(ours)


@dataclass(frozen=True)
class _Shown:
    """The judge's digit probabilities for one presentation order of a pair."""

    probs: np.ndarray  # (3,) over "1", "2", "3", renormalised
    mass: float  # their total probability before renormalising
    calibrated: np.ndarray  # (3,) probs / content-free preference, renormalised


class LocalJudge(Judge):
    """Next-token-probability judge on a transformers model (``local:SPEC``, SPEC any hf model spec).

    Args:
        model_spec: the model spec (``smollm2-135m``, ``hf:PATH?bits=4``...).
        batch_size: prompts per forward pass; None: 1 on a CPU (a long prompt already keeps the cores busy, and
            left padding of mixed lengths would only add work) and 8 on a GPU.
        device: ``cpu``, ``cuda`` or None for the best available.
    """

    def __init__(
        self, model_spec: str = DEFAULT_LOCAL_JUDGE, *, batch_size: int | None = None, device: str | None = None
    ):
        from qlora_eval.models.hf import HFChatModel
        from qlora_eval.models.spec import Backend, parse_model_spec

        spec = parse_model_spec(model_spec)
        if spec.backend is not Backend.HF:
            raise ConfigError(
                f"a local judge runs a transformers model; {model_spec!r} uses the {spec.backend.value} backend "
                "(use openai:MODEL?base_url=URL to judge with a model behind a server)"
            )
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"local judge batch size must be >= 1, got {batch_size}")
        self.model_spec = model_spec
        self.judge_id = f"local:{model_spec}"
        self.concurrency = 1  # one model, one forward pass at a time
        self._model = HFChatModel.from_spec(spec, device=device)
        on_gpu = self._model.loaded.device.startswith("cuda")
        self.batch_size = batch_size if batch_size is not None else (8 if on_gpu else 1)
        self._calibration: dict[str, np.ndarray] = {}
        # (template hash, prompt hash, answer shown 1st, answer shown 2nd) -> that order's probabilities; each
        # order is computed once whether it arrives as a request or as the mirror of one.
        self._shown: dict[tuple[str, str, str, str], _Shown] = {}

    @property
    def settings(self) -> dict[str, Any]:
        return local_judge_settings(self.model_spec)

    @property
    def cpu_threads(self) -> ThreadChoice | None:
        return self._model.cpu_threads

    def estimate_usd(self, request: JudgeRequest) -> float:
        return 0.0

    def judge_batch(self, requests: Sequence[JudgeRequest], budget: Budget) -> list[JudgeOutcome]:
        if not requests:
            return []
        start = time.perf_counter()
        todo: dict[tuple[str, str, str, str], tuple[JudgeRequest, tuple[Message, ...]]] = {}
        for r in requests:
            # The swapped order of the same call, with the whole conversation like r.messages.
            mirror = tuple(r.template.render_prompt(r.prompt, r.answer_b.text, r.answer_a.text))
            for key, messages in ((_order_key(r, swapped=False), r.messages), (_order_key(r, swapped=True), mirror)):
                if key not in self._shown:
                    todo.setdefault(key, (r, messages))
        keys = list(todo)
        texts = [self._model.format_prompt(todo[k][1]) + ASSISTANT_PREFIX for k in keys]
        if keys:
            logprobs = self._model.next_token_logprobs(texts, CANDIDATES, batch_size=self.batch_size)
            for key, row in zip(keys, logprobs, strict=True):
                probs = _renormalise(row)
                calibrated = probs / self._content_free(todo[key][0].template)
                self._shown[key] = _Shown(probs, float(np.exp(row).sum()), calibrated / calibrated.sum())
        latency = (time.perf_counter() - start) / len(requests)
        outcomes = []
        for request in requests:
            own, swapped = self._shown[_order_key(request, False)], self._shown[_order_key(request, True)]
            # p(answer 1 better) = mean of P("1") in this order and P("2") shown the other way round; ties alike.
            averaged = (own.calibrated + swapped.calibrated[[1, 0, 2]]) / 2
            alone, best = int(np.argmax(own.calibrated)), int(np.argmax(averaged))
            probs, content_free = own.probs, self._content_free(request.template)
            rationale = (
                f"Local judge {self.model_spec}: next-token probabilities after {ASSISTANT_PREFIX.strip()!r}, "
                f"over the three digits (their total mass {own.mass:.3f}): "
                f"P(1)={probs[0]:.3f}, P(2)={probs[1]:.3f}, P(3)={probs[2]:.3f}. Content-free preference: "
                f"{_fmt(content_free)}. Calibrated: {_fmt(own.calibrated)} -> {CANDIDATES[alone]}. "
                f"Averaged with the swapped order: {_fmt(averaged)} -> {CANDIDATES[best]}."
                + (f" {AVERAGING_CHANGED}" if alone != best else "")
            )
            judgment = request.judgment(self.judge_id, self.settings, _VERDICTS[best], rationale, latency_s=latency)
            outcomes.append(JudgeOutcome(request, judgment, None, attempts=1))
        return outcomes

    def _content_free(self, template: JudgeTemplate) -> np.ndarray:
        """The model's preference among the digits with no content (one forward pass per template, cached)."""
        if template.sha256 not in self._calibration:
            messages = template.render(CONTENT_FREE, CONTENT_FREE, CONTENT_FREE)
            text = self._model.format_prompt(messages) + ASSISTANT_PREFIX
            row = self._model.next_token_logprobs([text], CANDIDATES, batch_size=1)[0]
            self._calibration[template.sha256] = _renormalise(row)
        return self._calibration[template.sha256]

    def close(self) -> None:
        self._model.close()


def _order_key(request: JudgeRequest, swapped: bool) -> tuple[str, str, str, str]:
    first, second = (request.answer_b, request.answer_a) if swapped else (request.answer_a, request.answer_b)
    return (request.template.sha256, request.prompt.content_hash, first.answer_key, second.answer_key)


def _fmt(probs: np.ndarray) -> str:
    return ", ".join(f"{c}: {p:.3f}" for c, p in zip(CANDIDATES, probs, strict=True))


def _renormalise(logprobs: np.ndarray) -> np.ndarray:
    """Probabilities over the candidates from their log-probabilities (softmax, numerically stable)."""
    shifted = np.exp(logprobs - logprobs.max())
    return np.asarray(shifted / shifted.sum())


# -- the kind ----------------------------------------------------------------------------------------------


def _parse(text: str, rest: str) -> JudgeSpec:
    from qlora_eval.models.spec import parse_model_spec

    parse_model_spec(rest)  # fail now, with the model grammar, rather than after generating answers
    return JudgeSpec(text=text, kind=KIND, target=rest)


def _build(spec: JudgeSpec, options: JudgeOptions, price: Price | None) -> Judge:
    return LocalJudge(spec.target, batch_size=options.local_batch_size)


def _price(spec: JudgeSpec, table: PriceTable) -> Price:
    return Price(0.0, 0.0)  # a model in this process costs no money


KIND = JudgeKind(
    name="local",
    grammar="local:MODEL_SPEC              a local transformers model voting by next-token probabilities "
    "(e.g. local:smollm2-135m)",
    parse=_parse,
    settings=lambda spec, options: local_judge_settings(spec.target),
    price=_price,
    completion_tokens=lambda options: 1,  # one next-token distribution per call
    build=_build,
    runs_locally=True,
    report_note="It reads the probabilities of “1”, “2” and “3” as the next token of its reply to the pairwise "
    "judge prompt (calibrated against a content-free prompt). It is a weak judge, useful for running the pipeline "
    "offline, not for conclusions, and it tends to prefer the answer shown first.",
)

"""A position-free local judge: each answer is scored alone by the judge model's likelihood of it.

``local-likelihood:MODEL_SPEC[?tie_margin=X]`` scores every answer by the judge model's **mean per-token
log-probability of the answer given the conversation** (the prompt's turns in the judge's chat format, the
answer as the assistant's reply): one forward pass per answer, batched, and each answer scored once however many
pairs it appears in. A pair's verdict compares the two scores: the higher wins unless they differ by at most the
tie margin. No "1/2/3" prompt is shown, so the verdict cannot depend on which answer is shown first: the two orders
of a pair give mirrored verdicts by construction (GPTScore, Fu et al. 2023, scores text the same way).

Known biases, stated in the report: a likelihood is a fluency score, not a judgment of helpfulness or truth. It
prefers fluent, generic and short answers (typical phrasing has high probability; rare specifics, code, numbers
and names have low probability), and it prefers text the judge model itself would write: with the demo's judge
being the same SmolLM2 as the contestants, greedy answers (the model's own most likely tokens) are favoured, and
so are the full-precision model's samples over its NF4 copy's (whatever NF4 changes lowers the likelihood under the
unquantized judge, better or worse).
A mean over tokens removes most of the direct length effect of a summed log-probability but not all of it.

The tie margin (:data:`DEFAULT_TIE_MARGIN`) was calibrated on pairs that differ only by chance:
``benchmarks/likelihood_tie_margin.py`` scores answers of one model and one setting drawn with different seeds
for the demo prompts, and takes the median absolute difference of their scores, so such pairs come out a tie
half of the time (the figures are in ``benchmarks/results/likelihood_tie_margin.json``: quartiles of the null
differences 0.06 / 0.11 / 0.28 nats per token; at 0.11, 25% of the demo's fp32-vs-NF4 pairs are ties). Other judge
models or prompt sets deserve their own calibration: run the script and pass ``?tie_margin=X``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from qlora_eval.errors import ConfigError
from qlora_eval.judge.base import Budget, Judge, JudgeOutcome, JudgeRequest
from qlora_eval.judge.kind import JudgeKind, JudgeSpec
from qlora_eval.judge.options import JudgeOptions
from qlora_eval.judge.pricing import Price, PriceTable
from qlora_eval.models.threads import ThreadChoice
from qlora_eval.types import Message, Role, Verdict

if TYPE_CHECKING:
    from qlora_eval.models.hf import HFChatModel

KIND_NAME = "local-likelihood"
PROTOCOL = "pointwise-mean-logprob"
#: Bumped whenever the scoring changes (part of every judgment's settings, so of its key).
PROTOCOL_VERSION = 1
#: Calibrated by benchmarks/likelihood_tie_margin.py (see the module docstring), in nats per token: the median
#: |difference| of 36 null pairs (3 seeds of smollm2-fp32 on the 12 demo prompts, judged by SmolLM2-135M).
DEFAULT_TIE_MARGIN = 0.11
#: What the report says about this judge's known biases.
KNOWN_BIASES = (
    "It scores each answer alone by the judge model's mean per-token log-probability (a fluency score), so the "
    "order of presentation cannot matter; but it prefers fluent, generic and short answers over specific, "
    "technical or long ones, and text the judge model itself would write: when the judge is one of the "
    "contestants' own model (the demo's full-precision SmolLM2), it favours greedy decoding and that model's own "
    "samples over those of a quantized copy. It measures how typical an answer reads, not whether it is right."
)
#: Requests handed to one judge_batch call: enough that most answers of a prompt are scored in one go.
REQUESTS_PER_CALL = 64


@dataclass(frozen=True)
class LikelihoodSpec:
    """The target of a ``local-likelihood:`` judge spec.

    Attributes:
        model_spec: the judge model's spec (any hf model spec) without the judge's own options.
        tie_margin: scores that differ by at most this (nats per token) are a tie.
    """

    model_spec: str
    tie_margin: float = DEFAULT_TIE_MARGIN


def parse_likelihood_target(target: str) -> LikelihoodSpec:
    """Split ``MODEL_SPEC[?...&tie_margin=X]`` into the model spec and the tie margin.

    Raises:
        ConfigError: for a tie margin that is not a number >= 0, or a bad model spec.
    """
    from qlora_eval.models.spec import parse_model_spec

    base, sep, query = target.partition("?")
    margin = DEFAULT_TIE_MARGIN
    kept: list[tuple[str, str]] = []
    if sep:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError as exc:
            raise ConfigError(f"bad judge spec {KIND_NAME}:{target!r}: options must be key=value ({exc})") from exc
        for key, value in pairs:
            if key != "tie_margin":
                kept.append((key, value))
                continue
            try:
                margin = float(value)
            except ValueError:
                margin = -1.0
            if not math.isfinite(margin) or margin < 0:
                raise ConfigError(
                    f"bad judge spec {KIND_NAME}:{target!r}: tie_margin must be a number >= 0 (nats per token), got "
                    f"{value!r}; e.g. {KIND_NAME}:smollm2-135m?tie_margin={DEFAULT_TIE_MARGIN}"
                )
    model_spec = base + ("?" + urlencode(kept) if kept else "")
    parse_model_spec(model_spec)  # fail now, with the model grammar, rather than after generating answers
    return LikelihoodSpec(model_spec, margin)


def likelihood_judge_settings(target: str) -> dict[str, Any]:
    """The settings recorded with (and keying) every judgment of a likelihood judge."""
    spec = parse_likelihood_target(target)
    return {
        "protocol": PROTOCOL,
        "protocol_version": PROTOCOL_VERSION,
        "model": spec.model_spec,
        "score": "mean log-probability per answer token given the prompt's turns in the judge's chat format",
        "tie_margin": spec.tie_margin,
    }


@dataclass(frozen=True)
class AnswerScore:
    """The judge model's log-probability of one answer.

    Attributes:
        total: sum of the answer tokens' log-probabilities (nats).
        tokens: how many answer tokens were scored (0 for an empty answer).
    """

    total: float
    tokens: int

    @property
    def mean(self) -> float | None:
        """Mean log-probability per token; None for an empty answer (there is nothing to score)."""
        return self.total / self.tokens if self.tokens else None


def answer_logprobs(
    model: HFChatModel, conversations: Sequence[Sequence[Message]], answers: Sequence[str], *, batch_size: int = 8
) -> list[AnswerScore]:
    """Log-probabilities of each answer as the assistant's reply to its conversation, in right-padded batches.

    The context is ``model.format_prompt(conversation)`` (ending where the answer starts) and the answer is
    tokenized on its own, so exactly the answer's tokens are scored. Rows are sorted by length before batching
    so that little padding is computed.

    Args:
        model: a loaded transformers chat model.
        conversations: one conversation per answer (its last turn is the user's).
        answers: the answer texts.
        batch_size: sequences per forward pass.

    Returns:
        One :class:`AnswerScore` per answer, in the input order.
    """
    import torch

    if len(conversations) != len(answers):
        raise ValueError(f"{len(conversations)} conversations but {len(answers)} answers")
    tokenizer, net = model.loaded.tokenizer, model.loaded.model
    from qlora_eval.models.spec import ChatFormat

    # As generate() tokenizes: a chat template writes its own BOS; the plain-text Guanaco format needs one.
    add_special = model.spec.chat_format is ChatFormat.GUANACO
    rows: list[tuple[list[int], int]] = []  # (context + answer ids, answer length)
    for turns, answer in zip(conversations, answers, strict=True):
        context = tokenizer.encode(model.format_prompt(turns), add_special_tokens=add_special)
        reply = tokenizer.encode(answer, add_special_tokens=False)
        rows.append((context + reply, len(reply)))
    scores: list[AnswerScore] = [AnswerScore(0.0, 0)] * len(rows)
    order = sorted((i for i in range(len(rows)) if rows[i][1] > 0), key=lambda i: len(rows[i][0]))
    pad = int(tokenizer.pad_token_id)
    for begin in range(0, len(order), batch_size):
        chunk = order[begin : begin + batch_size]
        width = max(len(rows[i][0]) for i in chunk)
        # Right padding: real tokens keep positions 0..n-1, which is what a forward pass without
        # position_ids assumes (left padding would shift them).
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            seq = rows[i][0]
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        device = model.loaded.device
        with torch.inference_mode():
            logits = net(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1, :], dim=-1)  # (batch, width - 1, vocab): predicts token t + 1
        targets = ids[:, 1:].to(device)
        picked = logprobs.gather(2, targets.unsqueeze(-1)).squeeze(-1).cpu()  # (batch, width - 1)
        for row, i in enumerate(chunk):
            seq, n_reply = rows[i]
            # the answer's tokens sit at positions len(seq)-n_reply .. len(seq)-1, predicted one step earlier
            start = len(seq) - n_reply - 1
            scores[i] = AnswerScore(float(picked[row, start : start + n_reply].sum()), n_reply)
    return scores


def compare(score_a: AnswerScore, score_b: AnswerScore, tie_margin: float) -> Verdict:
    """The verdict between two scored answers (symmetric: swapping them mirrors the verdict).

    Both empty: BOTH_BAD; one empty: the other wins; else the higher mean wins unless the means differ by at
    most ``tie_margin``.
    """
    mean_a, mean_b = score_a.mean, score_b.mean
    if mean_a is None and mean_b is None:
        return Verdict.BOTH_BAD
    if mean_a is None:
        return Verdict.B
    if mean_b is None:
        return Verdict.A
    if abs(mean_a - mean_b) <= tie_margin:
        return Verdict.TIE
    return Verdict.A if mean_a > mean_b else Verdict.B


class LikelihoodJudge(Judge):
    """The ``local-likelihood:SPEC`` judge (see the module docstring).

    Args:
        target: the model spec, optionally with ``tie_margin=X`` among its options.
        batch_size: sequences per forward pass; None: 4 on a CPU, 16 on a GPU.
        device: ``cpu``, ``cuda`` or None for the best available.
    """

    def __init__(self, target: str, *, batch_size: int | None = None, device: str | None = None) -> None:
        from qlora_eval.models.hf import HFChatModel
        from qlora_eval.models.spec import Backend, parse_model_spec

        parsed = parse_likelihood_target(target)
        spec = parse_model_spec(parsed.model_spec)
        if spec.backend is not Backend.HF:
            raise ConfigError(
                f"a {KIND_NAME} judge scores answers with a transformers model; {parsed.model_spec!r} uses the "
                f"{spec.backend.value} backend (use an hf spec such as {KIND_NAME}:smollm2-135m)"
            )
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"{KIND_NAME} judge batch size must be >= 1, got {batch_size}")
        self.target = target
        self.spec = parsed
        self.judge_id = f"{KIND_NAME}:{target}"
        self.concurrency = 1  # one model, one forward pass at a time
        self.batch_size = REQUESTS_PER_CALL
        self._model = HFChatModel.from_spec(spec, device=device)
        on_gpu = self._model.loaded.device.startswith("cuda")
        self.forward_batch = batch_size if batch_size is not None else (16 if on_gpu else 4)
        self._scores: dict[tuple[str, str], AnswerScore] = {}  # (prompt content hash, answer key) -> score

    @property
    def settings(self) -> dict[str, Any]:
        return likelihood_judge_settings(self.target)

    @property
    def cpu_threads(self) -> ThreadChoice | None:
        return self._model.cpu_threads

    def estimate_usd(self, request: JudgeRequest) -> float:
        return 0.0

    def judge_batch(self, requests: Sequence[JudgeRequest], budget: Budget) -> list[JudgeOutcome]:
        if not requests:
            return []
        todo: dict[tuple[str, str], tuple[tuple[Message, ...], str]] = {}
        for r in requests:
            for answer in (r.answer_a, r.answer_b):
                key = (r.prompt.content_hash, answer.answer_key)
                if key not in self._scores:
                    todo[key] = (r.prompt.turns, answer.text)
        start = time.perf_counter()
        if todo:
            keys = list(todo)
            scored = answer_logprobs(
                self._model, [todo[k][0] for k in keys], [todo[k][1] for k in keys], batch_size=self.forward_batch
            )
            self._scores.update(zip(keys, scored, strict=True))
        latency = (time.perf_counter() - start) / len(requests)
        outcomes = []
        for r in requests:
            score_a = self._scores[(r.prompt.content_hash, r.answer_a.answer_key)]
            score_b = self._scores[(r.prompt.content_hash, r.answer_b.answer_key)]
            verdict = compare(score_a, score_b, self.spec.tie_margin)
            judgment = r.judgment(
                self.judge_id, self.settings, verdict, self._rationale(score_a, score_b, verdict), latency_s=latency
            )
            outcomes.append(JudgeOutcome(r, judgment, None, attempts=1))
        return outcomes

    def _rationale(self, score_a: AnswerScore, score_b: AnswerScore, verdict: Verdict) -> str:
        a, b = score_a.mean, score_b.mean
        parts = [
            f"Likelihood judge {self.spec.model_spec}: mean log-probability per token of each answer given the "
            f"conversation: answer 1 {_fmt(a)} ({score_a.tokens} tokens), answer 2 {_fmt(b)} ({score_b.tokens} "
            "tokens)."
        ]
        if a is not None and b is not None:
            relation = "<=" if abs(a - b) <= self.spec.tie_margin else ">"
            parts.append(f"Difference {abs(a - b):.3f} {relation} tie margin {self.spec.tie_margin:g}")
        else:
            parts.append("An empty answer has no score")
        parts.append(f"-> {verdict.value}.")
        return " ".join(parts)

    def close(self) -> None:
        self._model.close()


def _fmt(value: float | None) -> str:
    return "n/a (empty)" if value is None else f"{value:.3f}"


# -- the kind ----------------------------------------------------------------------------------------------


def _parse(text: str, rest: str) -> JudgeSpec:
    parse_likelihood_target(rest)  # fail now (bad margin, bad model spec) rather than after generating answers
    return JudgeSpec(text=text, kind=KIND, target=rest)


def _build(spec: JudgeSpec, options: JudgeOptions, price: Price | None) -> Judge:
    return LikelihoodJudge(spec.target, batch_size=options.local_batch_size)


def _price(spec: JudgeSpec, table: PriceTable) -> Price:
    return Price(0.0, 0.0)  # a model in this process costs no money


KIND = JudgeKind(
    name=KIND_NAME,
    grammar=f"{KIND_NAME}:MODEL_SPEC[?tie_margin=X]  a local transformers model scoring each answer alone by its "
    f"mean per-token log-probability; position-free (e.g. {KIND_NAME}:smollm2-135m, margin {DEFAULT_TIE_MARGIN})",
    parse=_parse,
    settings=lambda spec, options: likelihood_judge_settings(spec.target),
    price=_price,
    completion_tokens=lambda options: 0,  # nothing is generated: the answers are scored
    build=_build,
    runs_locally=True,
    report_note=KNOWN_BIASES,
)


def user_turn(text: str) -> tuple[Message, ...]:
    """A one-turn conversation (for scripts that score answers outside a judging run)."""
    return (Message(Role.USER, text),)

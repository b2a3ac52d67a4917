"""Which judge calls a run needs: every pair of models, on every prompt, in both orders, minus stored ones.

The never-pay-twice rule starts here: each call's content key (judge, template hash, prompt, both answer
keys, order, judge settings) is computed before anything is sent, and keys already in the store are skipped.
Imported verdicts of another judge (``--reuse-imported JUDGE``, e.g. the paper's GPT-4 reviews) can stand in
for calls: a (prompt, model shown first, model shown second) they cover is counted as done, not planned, but only
when the verdict is about the very answers this run would show (see :func:`reused_key`): a verdict that names its
answer keys must name the planned ones; one without (the paper's review files) only covers imported answers.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qlora_eval.config import PAIRINGS  # the one definition (``all``: every unordered pair, round robin)
from qlora_eval.errors import ConfigError
from qlora_eval.interchange.answers import IMPORTED_SPEC_PREFIX
from qlora_eval.judge.base import JudgeRequest
from qlora_eval.judge.templates import TemplateSet
from qlora_eval.types import Answer, Judgment, Order, Prompt, Verdict


@dataclass(frozen=True)
class JudgePlan:
    """The calls of a run.

    Attributes:
        requests: calls still to make (their keys are not stored), in a stable order.
        stored_keys: keys of this run's judgments that are already stored (skipped: already paid for).
        missing_answers: (model, prompt_id) pairs without a stored answer; their battles are left out.
        reused_keys: keys of imported judgments that stand in for calls (``--reuse-imported``): not paid for.
    """

    requests: list[JudgeRequest]
    stored_keys: list[str]
    missing_answers: list[tuple[str, str]]
    reused_keys: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """How many judgments this run covers (stored + reused imports + to make)."""
        return len(self.requests) + len(self.stored_keys) + len(self.reused_keys)


@dataclass(frozen=True)
class ImportedVerdict:
    """An imported judgment that may stand in for a call: its key and the answer keys it names (None: unknown)."""

    key: str
    answer_a_key: str | None
    answer_b_key: str | None


#: (prompt_set, prompt_id, model shown first, model shown second) -> the imported judgments of that call.
ReusableVerdicts = Mapping[tuple[str, str, str, str], Sequence[ImportedVerdict]]


def latest_answers(answers: Sequence[Answer], prompts: Sequence[Prompt]) -> dict[tuple[str, str], Answer]:
    """(model, prompt_id) -> the newest stored answer to the current text of each prompt.

    Args:
        answers: stored answers, oldest first (as ``Store.answers`` returns them).
        prompts: the prompts of one set; answers to an older text of a prompt are ignored.
    """
    hashes = {p.prompt_id: p.content_hash for p in prompts}
    chosen: dict[tuple[str, str], Answer] = {}
    for answer in answers:
        if hashes.get(answer.prompt_id) == answer.prompt_hash:
            chosen[(answer.model, answer.prompt_id)] = answer
    return chosen


def model_pairs(models: Sequence[str], pairs: str) -> list[tuple[str, str]]:
    """Unordered model pairs (alphabetical inside each pair) for a pairing scheme."""
    if pairs not in PAIRINGS:
        raise ConfigError(f"--pairs must be one of {list(PAIRINGS)}, got {pairs!r}")
    unique = sorted(set(models))
    if len(unique) < 2:
        raise ConfigError(f"judging needs at least two different models, got {list(models)}")
    return list(itertools.combinations(unique, 2))


def plan_judgments(
    *,
    prompts: Sequence[Prompt],
    answers: Mapping[tuple[str, str], Answer],
    models: Sequence[str],
    judge_id: str,
    judge_settings: dict[str, Any],
    templates: TemplateSet,
    is_stored: Callable[[str], bool],
    pairs: str = "all",
    reusable: ReusableVerdicts | None = None,
    retry_invalid: Callable[[str], Verdict | None] | None = None,
) -> JudgePlan:
    """Every (prompt, pair, order) call, split into stored and still to make.

    Args:
        prompts: the prompts to judge on.
        answers: (model, prompt_id) -> the answer to judge (see :func:`latest_answers`).
        models: the contestants (display names).
        judge_id: the judge recorded with each judgment.
        judge_settings: the judge's settings (part of each key).
        templates: the judge templates; each prompt's category picks one.
        is_stored: tells whether a judgment key is already in the store.
        pairs: the pairing scheme (see :data:`PAIRINGS`).
        reusable: imported verdicts that count as done for the same prompt, models, order and answers (see
            :func:`reusable_verdicts` and :func:`reused_key`); None: reuse nothing.
        retry_invalid: ``--retry-invalid``: the stored verdict of a key; a call stored as INVALID (and every
            retry of it INVALID too) is planned again as its next retry (:attr:`JudgeRequest.retry`). None: an
            INVALID judgment counts as done (it was paid for).
    """
    reusable = reusable or {}
    requests: list[JudgeRequest] = []
    reused: list[str] = []
    stored: list[str] = []
    missing: list[tuple[str, str]] = []
    pair_list = model_pairs(models, pairs)
    for prompt in prompts:
        lacking = [m for m in sorted(set(models)) if (m, prompt.prompt_id) not in answers]
        missing.extend((m, prompt.prompt_id) for m in lacking)
        template = templates.for_prompt(prompt)
        for first, second in pair_list:
            if first in lacking or second in lacking:
                continue
            for order in (Order.FORWARD, Order.SWAPPED):
                shown_a, shown_b = (first, second) if order is Order.FORWARD else (second, first)
                answer_a, answer_b = answers[(shown_a, prompt.prompt_id)], answers[(shown_b, prompt.prompt_id)]
                key = Judgment.key_for(
                    judge_id,
                    template.sha256,
                    prompt.prompt_set,
                    prompt.prompt_id,
                    answer_a.answer_key,
                    answer_b.answer_key,
                    order,
                    judge_settings,
                )
                retry = 0
                if is_stored(key) and retry_invalid is not None:
                    key_with = functools.partial(
                        Judgment.key_for, judge_id, template.sha256, prompt.prompt_set, prompt.prompt_id,
                        answer_a.answer_key, answer_b.answer_key, order,
                    )  # fmt: skip
                    retry, key = _next_retry(key, retry_invalid, key_with, judge_settings)
                if is_stored(key):
                    stored.append(key)
                    continue
                imported = reused_key(reusable, prompt, answer_a, answer_b)
                if imported is not None:
                    reused.append(imported)
                    continue
                # The whole conversation: earlier turns (marked) and then the final question.
                messages = tuple(template.render_prompt(prompt, answer_a.text, answer_b.text))
                requests.append(JudgeRequest(key, prompt, answer_a, answer_b, order, template, messages, retry))
    return JudgePlan(requests=requests, stored_keys=stored, missing_answers=missing, reused_keys=reused)


def _next_retry(
    key: str,
    verdict_of: Callable[[str], Verdict | None],
    key_with: Callable[[dict[str, Any]], str],
    settings: dict[str, Any],
) -> tuple[int, str]:
    """(retry number, key) of the call to plan for a stored key: (0, key) if its verdict is valid, else the first
    retry not stored or not INVALID (a stored valid retry is then reported as stored by the caller)."""
    if verdict_of(key) is not Verdict.INVALID:
        return 0, key
    n = 1
    while verdict_of(key_with({**settings, "retry": n})) is Verdict.INVALID:
        n += 1
    return n, key_with({**settings, "retry": n})


def reusable_verdicts(
    judgments: Sequence[tuple[str, Judgment]],
) -> dict[tuple[str, str, str, str], list[ImportedVerdict]]:
    """Index (key, judgment) pairs of the reused judge by (prompt_set, prompt_id, shown first, shown second).

    INVALID verdicts are left out: they hold no verdict, so the call is still worth making. Whether one of a
    call's imported verdicts covers the planned answers is decided per call by :func:`reused_key`.
    """
    index: dict[tuple[str, str, str, str], list[ImportedVerdict]] = {}
    for key, judgment in judgments:
        if judgment.verdict is Verdict.INVALID:
            continue
        call = (judgment.prompt_set, judgment.prompt_id, judgment.model_a, judgment.model_b)
        index.setdefault(call, []).append(ImportedVerdict(key, judgment.answer_a_key, judgment.answer_b_key))
    return index


def reused_key(reusable: ReusableVerdicts, prompt: Prompt, answer_a: Answer, answer_b: Answer) -> str | None:
    """The key of the first imported verdict about exactly these shown answers, or None (the call is planned).

    The rule, for each shown side: a verdict that names the answer key must name the planned answer's key (the
    key covers the model spec, the prompt's text hash and the settings, so a regenerated answer or a changed
    prompt no longer matches); a verdict that names none (the paper's review files) can only be about the
    imported answers, so it counts only if the planned answer is the imported one of that model (model spec
    ``imported:<model>``, as ``import --format qlora-generations`` / ``answers`` store it). A model whose answers
    were regenerated therefore has its pairs judged again, and the untouched pairs stay reused.
    """
    for verdict in reusable.get((prompt.prompt_set, prompt.prompt_id, answer_a.model, answer_b.model), ()):
        if _covers(verdict.answer_a_key, answer_a) and _covers(verdict.answer_b_key, answer_b):
            return verdict.key
    return None


def _covers(named_key: str | None, answer: Answer) -> bool:
    """Whether a verdict that names ``named_key`` (None: names none) is about ``answer``."""
    if named_key is not None:
        return named_key == answer.answer_key
    return answer.model_spec == IMPORTED_SPEC_PREFIX + answer.model

"""The QLoRA repository's relative-score reviews (``eval/ratings-gpt4/vicuna/relative-gpt-3.5/*.jsonl``).

Each line: ``question_id``, ``answer1_id`` and ``answer2_id`` (the answers shown first and second),
``score`` (the pair ``[s1, s2]`` that ``eval_gpt_review.py`` parsed from the review's first line, ``[-1, -1]``
when it could not: stored as INVALID and counted), ``text`` (the review, kept as the rationale), and
``review_id``, ``reviewer_id``, ``metadata`` (ignored).

The file name is NOT trusted: in the published files the order of the names differs from the order the
judge saw. The order comes from the answer ids only, resolved against answers imported before (the
``qlora-generations`` format keeps their ids); an id that resolves to no answer, or to answers of several
models, is an error. The judge is ``--reviewer`` (default ``gpt-4``, the name the three-class files use).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from qlora_eval.errors import InputError
from qlora_eval.interchange.base import (
    Format,
    Imported,
    ImportOptions,
    RecordKind,
    RelativeReview,
    Row,
    SourceFile,
    iter_jsonl,
    read_text,
    sha256_file,
)
from qlora_eval.types import Order, RelativeJudgment, utc_now

REQUIRED_FIELDS = ("question_id", "answer1_id", "answer2_id", "score")
OPTIONAL_FIELDS = ("text", "review_id", "reviewer_id", "metadata")
RESOLVE_HINT = (
    "import the generation files first (qlora-eval import generations/vicuna --format qlora-generations "
    "--prompt-set vicuna --db DB), then the reviews into the same --db"
)


def _scores(row: Row) -> tuple[float, float] | None:
    value: Any = row.raw("score")
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )
    if not ok:
        raise row.error(f"field 'score' is {value!r}; expected a pair of numbers [score 1, score 2] or [-1, -1]")
    first, second = float(value[0]), float(value[1])
    if first == -1 and second == -1:
        return None
    if not (0 <= first <= 10 and 0 <= second <= 10):
        raise row.error(f"field 'score' is {value!r}; expected scores from 0 to 10, or [-1, -1] when unparsable")
    return first, second


def read(path: Path, options: ImportOptions) -> Imported:
    """Read one relative review file into unresolved reviews (resolved against stored answers when stored)."""
    prompt_set = options.prompt_set or FORMAT.default_prompt_set or "vicuna"
    reviews: list[RelativeReview] = []
    for number, data in iter_jsonl(path, read_text(path)):
        row = Row(data, path, number)
        keys = set(row.data)
        if not set(REQUIRED_FIELDS) <= keys or keys - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS):
            raise row.error(
                f"unknown field set {', '.join(sorted(keys))}; the qlora-relative format expects "
                f"{', '.join(REQUIRED_FIELDS)} (and optionally {', '.join(OPTIONAL_FIELDS)})"
            )
        first, second = row.ident("answer1_id"), row.ident("answer2_id")
        if first == second:
            raise row.error(f"answer1_id and answer2_id are both {first!r}; expected two different answers")
        reviews.append(
            RelativeReview(
                judge=options.reviewer,
                prompt_set=prompt_set,
                prompt_id=row.ident("question_id"),
                answer1_id=first,
                answer2_id=second,
                scores=_scores(row),
                rationale=row.optional_string("text") or "",
                source=str(path),
                line=number,
            )
        )
    if not reviews:
        expected = ", ".join(REQUIRED_FIELDS)
        raise InputError(f"the file holds no reviews; expected JSONL rows with {expected}", source=str(path))
    return Imported(relative=tuple(reviews), sources=(SourceFile(str(path), sha256_file(path), len(reviews)),))


class ResolvedAnswer(Protocol):
    """What resolving needs to know of an answer an id names (``store.AnswerRef`` has it)."""

    @property
    def answer_key(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def prompt_set(self) -> str: ...
    @property
    def prompt_id(self) -> str: ...


def resolve(reviews: Sequence[RelativeReview], known: Mapping[str, Sequence[ResolvedAnswer]]) -> list[RelativeJudgment]:
    """Turn reviews into relative judgments, the shown order taken from the answer ids.

    Args:
        reviews: reviews as read.
        known: external answer id -> the answers it names.

    Raises:
        InputError: naming file and line, for an id that names no answer, answers of several models, or an
            answer to another prompt than the review's; nothing is resolved by guessing.
    """
    stamp = utc_now()
    out: list[RelativeJudgment] = []
    for review in reviews:
        shown = [_one(review, answer_id, known) for answer_id in (review.answer1_id, review.answer2_id)]
        first, second = shown
        if first.model == second.model:
            raise InputError(
                f"both answer ids name answers of {first.model!r}; expected two different models",
                source=review.source,
                line=review.line,
            )
        out.append(
            RelativeJudgment(
                judge=review.judge,
                model_a=first.model,
                model_b=second.model,
                prompt_set=review.prompt_set,
                prompt_id=review.prompt_id,
                scores=review.scores,
                order=Order.of(first.model, second.model),
                answer_a_key=first.answer_key,
                answer_b_key=second.answer_key,
                rationale=review.rationale,
                source=f"{review.source}:{review.line}",
                created_at=stamp,
            )
        )
    return out


def _one(review: RelativeReview, answer_id: str, known: Mapping[str, Sequence[ResolvedAnswer]]) -> ResolvedAnswer:
    found = known.get(answer_id, ())
    if not found:
        raise InputError(
            f"answer id {answer_id!r} names no imported answer; {RESOLVE_HINT}", source=review.source, line=review.line
        )
    models = sorted({a.model for a in found})
    if len(models) > 1:
        raise InputError(
            f"answer id {answer_id!r} names answers of several models ({', '.join(models)}); "
            "the shown order cannot be resolved, import only one of them into this store",
            source=review.source,
            line=review.line,
        )
    answer = found[0]
    if (answer.prompt_set, answer.prompt_id) != (review.prompt_set, review.prompt_id):
        raise InputError(
            f"answer id {answer_id!r} is {answer.model}'s answer to prompt {answer.prompt_set}/{answer.prompt_id}, "
            f"but the review is about {review.prompt_set}/{review.prompt_id}; check --prompt-set",
            source=review.source,
            line=review.line,
        )
    return answer


FORMAT = Format(
    name="qlora-relative",
    kind=RecordKind.JUDGMENTS,
    folder_glob=("*-reviewer.jsonl",),
    default_prompt_set="vicuna",
    read=read,
    description="the QLoRA repository's relative-score reviews (score pair per answer, order from answer ids)",
)

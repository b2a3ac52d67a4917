"""The QLoRA repository's GPT-4 review files (``eval/ratings-gpt4/...``).

A file is named ``<answersA>-vs-<answersB>-<reviewer>-reviewer[-threeclass].jsonl``: the answers of A were
shown to the reviewer first. Each line is a JSON object with the prompt id (``question_id``, or
``message_id`` in the OA files), the reviewer's text and ``score``:

* three-class files: ``1`` (A better), ``2`` (B better), ``3`` (tie), ``-1`` (unparsable, stored as INVALID);
  the repository writes integers, strings such as ``"1"`` are accepted too;
* files without ``-threeclass``: a pair ``[score A, score B]`` (``[-1, -1]`` = unparsable) or the codes above.

A score pair in a row that names its answers (``answer1_id``, as the paper's ``eval_gpt_review.py`` writes)
is one of the paper's relative-score reviews (``ratings-gpt4/vicuna/relative-gpt-3.5/``). Those are refused
here rather than turned into pairwise verdicts: their file names do not give the order the judge saw, and
two 1-10 scores are not a three-class verdict. ``--format qlora-relative`` reads them, the order taken from
the answer ids.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from qlora_eval.errors import InputError
from qlora_eval.interchange.base import (
    Format,
    Imported,
    ImportOptions,
    RecordKind,
    Row,
    iter_jsonl,
    read_text,
)
from qlora_eval.types import Judgment, Order, Verdict, utc_now

FILE_PATTERN = "<answersA>-vs-<answersB>-<reviewer>-reviewer[-threeclass].jsonl"
_CODES: dict[str, Verdict] = {"1": Verdict.A, "2": Verdict.B, "3": Verdict.TIE, "-1": Verdict.INVALID}


def parse_file_name(name: str, reviewer: str, *, source: str | None = None) -> tuple[str, str, bool]:
    """Split a review file name into (model A, model B, three-class?).

    Model A is the stem before the first ``-vs-``; model B the rest before ``-<reviewer>-reviewer``. The
    reviewer is given (default ``gpt-4``) because model names and reviewer names both contain dashes, so
    ``...-gpt-3.5-oa-generations-gpt-4-reviewer`` cannot be split without knowing one of them.

    Args:
        name: the file name (no folder).
        reviewer: the reviewer the name must end with.
        source: the path to name in errors (default: ``name``).

    Raises:
        InputError: the name does not follow the pattern.
    """
    pattern = re.compile(
        r"^(?P<a>.+?)-vs-(?P<b>.+)-" + re.escape(reviewer) + r"-reviewer(?P<three>-threeclass)?\.jsonl$"
    )
    match = pattern.match(name)
    if match is None:
        raise InputError(
            f"file name does not parse; expected {FILE_PATTERN} with reviewer {reviewer!r} "
            "(pass --reviewer NAME if another model reviewed)",
            source=source or name,
        )
    model_a, model_b = match["a"], match["b"]
    if model_a == model_b:
        raise InputError(
            f"file name names the same answers twice ({model_a!r}); expected two different ones", source=source or name
        )
    return model_a, model_b, match["three"] is not None


def score_to_verdict(row: Row, *, three_class: bool) -> Verdict:
    """Map the ``score`` field to a verdict about the order shown (A first).

    Raises:
        InputError: a score pair (a relative review: refused, see the module docstring) or an unknown code.
    """
    value: Any = row.raw("score")
    if isinstance(value, list) and len(value) == 2 and "answer1_id" in row.data:
        raise row.error(
            f"field 'score' is the score pair {value!r}: this is a relative-score review, not a pairwise verdict; "
            "import it with --format qlora-relative (the order shown comes from answer1_id/answer2_id, "
            "not from the file name) and rank it with --method relative"
        )
    if isinstance(value, list) and not three_class:
        if len(value) != 2 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            raise row.error(f"field 'score' is {value!r}; expected a pair of numbers [score A, score B]")
        first, second = float(value[0]), float(value[1])
        if first == -1 and second == -1:
            return Verdict.INVALID
        if first > second:
            return Verdict.A
        return Verdict.B if second > first else Verdict.TIE
    key = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else None
    if key is None or key.strip() not in _CODES:
        extra = "" if three_class else " or a pair [score A, score B]"
        raise row.error(
            f"field 'score' is {value!r}; expected 1 (A better), 2 (B better), 3 (tie) or -1 (unparsable){extra}"
        )
    return _CODES[key.strip()]


def read(path: Path, options: ImportOptions) -> Imported:
    """Read one review file into judgments (judge = the reviewer named in the file name)."""
    model_a, model_b, three_class = parse_file_name(path.name, options.reviewer, source=str(path))
    prompt_set = options.prompt_set or FORMAT.default_prompt_set or "vicuna"
    order = Order.of(model_a, model_b)
    judgments: list[Judgment] = []
    stamp = utc_now()  # one import time per file (and not a clock call per line)
    text = read_text(path)
    for number, data in iter_jsonl(path, text):
        row = Row(data, path, number)
        if row.has("question_id"):
            prompt_id = row.ident("question_id")
        elif row.has("message_id"):
            prompt_id = row.ident("message_id")
        else:
            raise row.error("missing field 'question_id' (or 'message_id' in OA files)")
        verdict = score_to_verdict(row, three_class=three_class)
        judgments.append(
            Judgment(
                judge=options.reviewer,
                model_a=model_a,
                model_b=model_b,
                prompt_set=prompt_set,
                prompt_id=prompt_id,
                verdict=verdict,
                order=order,
                rationale=row.optional_string("text") or "",
                settings={"threeclass": three_class},
                source=f"{path}:{number}",  # file:line, so a conflict can name the line
                created_at=stamp,
            )
        )
    return Imported.judgments_of_file(path, judgments, noun="reviews", expected="one JSON object per line")


FORMAT = Format(
    name="qlora",
    kind=RecordKind.JUDGMENTS,
    folder_glob=("*-vs-*-reviewer*.jsonl",),
    default_prompt_set="vicuna",
    read=read,
    description=f"QLoRA review files named {FILE_PATTERN}",
)

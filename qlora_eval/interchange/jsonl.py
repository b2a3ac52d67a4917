"""The project's own JSONL: one judgment or answer per line, every field kept, so export -> import is exact.

Each object has ``"kind": "judgment"`` or ``"kind": "answer"`` and exactly the fields of the record
(``verdict`` and ``order`` as their enum values). Unknown fields are refused: this format is written by
``qlora-eval export``, so an unknown field means a different file or a typo.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from qlora_eval.errors import InputError
from qlora_eval.interchange.base import (
    Format,
    Imported,
    ImportOptions,
    RecordKind,
    Row,
    SourceFile,
    iter_jsonl,
    read_text,
    sha256_file,
)
from qlora_eval.types import Answer, Judgment, Order, Verdict

JUDGMENT_FIELDS = (
    "judge",
    "model_a",
    "model_b",
    "prompt_set",
    "prompt_id",
    "verdict",
    "order",
    "template_hash",
    "answer_a_key",
    "answer_b_key",
    "rationale",
    "settings",
    "cost_usd",
    "latency_s",
    "prompt_tokens",
    "completion_tokens",
    "source",
    "created_at",
)
ANSWER_FIELDS = (
    "model",
    "model_spec",
    "prompt_set",
    "prompt_id",
    "prompt_hash",
    "text",
    "settings",
    "prompt_tokens",
    "answer_tokens",
    "latency_s",
    "created_at",
)
_VERDICTS = {v.value: v for v in Verdict}
_ORDERS = {o.value: o for o in Order}


def judgment_to_dict(judgment: Judgment) -> dict[str, Any]:
    """A judgment as one JSONL object (``kind`` first)."""
    out: dict[str, Any] = {"kind": "judgment"}
    for name in JUDGMENT_FIELDS:
        value = getattr(judgment, name)
        out[name] = value.value if isinstance(value, Verdict | Order) else value
    return out


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    """An answer as one JSONL object (``kind`` first)."""
    return {"kind": "answer", **{name: getattr(answer, name) for name in ANSWER_FIELDS}}


def write_records(records: Iterable[Judgment | Answer], out: TextIO) -> int:
    """Write judgments and/or answers as JSONL; returns how many lines were written."""
    count = 0
    for record in records:
        data = judgment_to_dict(record) if isinstance(record, Judgment) else answer_to_dict(record)
        out.write(json.dumps(data, ensure_ascii=False) + "\n")
        count += 1
    return count


def _check_keys(row: Row, expected: tuple[str, ...]) -> None:
    keys = set(row.data) - {"kind"}
    missing = [k for k in expected if k not in keys]
    if missing:
        raise row.error(f"missing field(s) {', '.join(missing)}; expected the fields qlora-eval export writes")
    unknown = sorted(keys - set(expected))
    if unknown:
        raise row.error(f"unknown field(s) {', '.join(unknown)}; expected only {', '.join(expected)}")


def _judgment(row: Row) -> Judgment:
    _check_keys(row, JUDGMENT_FIELDS)
    model_a, model_b = row.string("model_a", allow_blank=True), row.string("model_b", allow_blank=True)
    if model_a == model_b:
        raise row.error(f"model_a and model_b are both {model_a!r}; expected two different models")
    cost = row.number("cost_usd")
    if cost is None or cost < 0:
        raise row.error(f"field 'cost_usd' is {row.data['cost_usd']!r}; expected a number >= 0")
    return Judgment(
        judge=row.string("judge", allow_blank=True),
        model_a=model_a,
        model_b=model_b,
        prompt_set=row.string("prompt_set", allow_blank=True),
        prompt_id=row.string("prompt_id", allow_blank=True),
        verdict=row.choice("verdict", _VERDICTS),
        order=row.choice("order", _ORDERS),
        template_hash=row.string("template_hash", allow_empty=True),
        answer_a_key=row.optional_string("answer_a_key"),
        answer_b_key=row.optional_string("answer_b_key"),
        rationale=row.string("rationale", allow_empty=True),
        settings=row.mapping("settings"),
        cost_usd=cost,
        latency_s=row.number("latency_s"),
        prompt_tokens=row.integer("prompt_tokens"),
        completion_tokens=row.integer("completion_tokens"),
        source=row.optional_string("source"),
        created_at=row.string("created_at", allow_blank=True),
    )


def _answer(row: Row) -> Answer:
    _check_keys(row, ANSWER_FIELDS)
    return Answer(
        model=row.string("model", allow_blank=True),
        model_spec=row.string("model_spec", allow_blank=True),
        prompt_set=row.string("prompt_set", allow_blank=True),
        prompt_id=row.string("prompt_id", allow_blank=True),
        prompt_hash=row.string("prompt_hash", allow_blank=True),
        text=row.string("text", allow_empty=True),
        settings=row.mapping("settings"),
        prompt_tokens=row.integer("prompt_tokens"),
        answer_tokens=row.integer("answer_tokens"),
        latency_s=row.number("latency_s"),
        created_at=row.string("created_at", allow_blank=True),
    )


def read(path: Path, options: ImportOptions) -> Imported:
    """Read a file written by ``qlora-eval export --format jsonl`` (judgments, answers or both)."""
    del options  # records carry their own prompt set
    judgments: list[Judgment] = []
    answers: list[Answer] = []
    answer_lines: list[int] = []
    for number, data in iter_jsonl(path, read_text(path)):
        row = Row(data, path, number)
        kind = row.choice("kind", {"judgment": "judgment", "answer": "answer"})
        if kind == "judgment":
            judgments.append(_judgment(row))
        else:
            answers.append(_answer(row))
            answer_lines.append(number)
    count = len(judgments) + len(answers)
    if not count:
        raise InputError("the file holds no records; expected JSONL written by qlora-eval export", source=str(path))
    return Imported(
        judgments=tuple(judgments),
        answers=tuple(answers),
        sources=(SourceFile(str(path), sha256_file(path), count),),
        answer_sources=tuple(f"{path}:{n}" for n in answer_lines),
    )


FORMAT = Format(
    name="jsonl",
    kind=RecordKind.BOTH,
    folder_glob=("*.jsonl",),
    default_prompt_set=None,
    read=read,
    description="qlora-eval's own JSONL (what export writes)",
)

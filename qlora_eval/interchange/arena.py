"""Chatbot Arena battles: a JSON array (``clean_battle_*.json``) or JSONL, one battle per object.

Fields: ``model_a`` (shown first), ``model_b``, ``winner`` in ``model_a``/``model_b``/``tie``/
``tie (bothbad)``; optional ``question_id`` (else ``<file name>:<line>`` stands in) and ``judge`` (else
``arena-human``). The exporter writes the same shape, so Arena tooling can read the project's judgments.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from qlora_eval.interchange.base import (
    Format,
    Imported,
    ImportOptions,
    RecordKind,
    Row,
    iter_json_array,
    iter_jsonl,
    read_text,
)
from qlora_eval.types import Judgment, Order, Verdict, utc_now

DEFAULT_JUDGE = "arena-human"
_WINNERS = {"model_a": Verdict.A, "model_b": Verdict.B, "tie": Verdict.TIE, "tie (bothbad)": Verdict.BOTH_BAD}
_EXPORT_WINNER = {Verdict.A: "model_a", Verdict.B: "model_b", Verdict.TIE: "tie", Verdict.BOTH_BAD: "tie (bothbad)"}


def read(path: Path, options: ImportOptions) -> Imported:
    """Read one Arena battle file (JSON array or JSONL) into judgments.

    Public Arena dumps hold millions of battles, so the common case takes a fast path: JSONL lines are
    decoded by the JSON scanner directly and well-formed rows are checked with plain dict lookups. Any
    line or row that the fast path does not accept goes through the shared readers (``iter_jsonl``,
    ``Row``), which either accept it the same way or raise their usual error naming the file and line.
    """
    prompt_set = options.prompt_set or FORMAT.default_prompt_set or "arena"
    text = read_text(path)
    rows = iter_json_array(path, text) if text.lstrip().startswith("[") else _iter_jsonl_fast(path, text)
    judgments: list[Judgment] = []
    stamp = utc_now()  # one import time per file (and not a clock call per line)
    source = str(path)
    fast_fields, checked_fields = _fast_fields, _checked_fields  # locals: this loop runs a million times
    for number, data in rows:
        fields = fast_fields(data)
        if fields is None:
            fields = checked_fields(Row(data, path, number))
        model_a, model_b, verdict, prompt_id, judge = fields
        judgments.append(
            Judgment(
                judge=judge if judge is not None else DEFAULT_JUDGE,
                model_a=model_a,
                model_b=model_b,
                prompt_set=prompt_set,
                prompt_id=prompt_id if prompt_id is not None else f"{path.name}:{number}",
                verdict=verdict,
                order=Order.FORWARD if model_a <= model_b else Order.SWAPPED,  # Order.of, inlined
                source=f"{source}:{number}",  # file:line, so a conflict can name the line
                created_at=stamp,
            )
        )
    return Imported.judgments_of_file(path, judgments, noun="battles", expected="a JSON array or JSONL of battles")


_Fields = tuple[str, str, Verdict, str | None, str | None]


def _checked_fields(row: Row) -> _Fields:
    """The row's fields through ``Row``'s checks (raises the error that names the file, line and field)."""
    model_a, model_b = row.string("model_a"), row.string("model_b")
    if model_a == model_b:
        raise row.error(f"model_a and model_b are both {model_a!r}; expected two different models")
    verdict = row.choice("winner", _WINNERS)
    prompt_id = row.ident("question_id") if row.has("question_id") else None
    judge = row.string("judge") if row.has("judge") else None
    return model_a, model_b, verdict, prompt_id, judge


def _fast_fields(data: dict[str, Any]) -> _Fields | None:
    """The same fields as :func:`_checked_fields` for a well-formed row, else None (then ``Row`` decides)."""
    model_a, model_b, winner = data.get("model_a"), data.get("model_b"), data.get("winner")
    if type(model_a) is not str or type(model_b) is not str or type(winner) is not str:
        return None
    verdict = _WINNERS.get(winner)
    if verdict is None or model_a == model_b or not model_a.strip() or not model_b.strip():
        return None
    question, judge = data.get("question_id"), data.get("judge")
    if question is not None and not (
        (type(question) is str and question.strip()) or type(question) is int  # bool is not an id
    ):
        return None
    if judge is not None and not (type(judge) is str and judge.strip()):
        return None
    return model_a, model_b, verdict, (str(question) if question is not None else None), judge


def _iter_jsonl_fast(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``iter_jsonl``'s records, decoding each line with the JSON scanner (no per-call ``json.loads`` overhead).

    A line the scanner does not turn into exactly one object is handed to ``iter_jsonl`` itself, which
    accepts it as ``json.loads`` would or raises its error with the right line number.
    """
    # The decoder's scanner (the C one where available) is what json.loads runs after its Python-level wrapper.
    scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
    for number, line in enumerate(text.split("\n"), start=1):
        body = line.strip(" \t\r")  # JSON's whitespace (the line holds no \n)
        if not body:
            continue  # blank (a line of other whitespace fails the scan below and iter_jsonl skips it)
        try:
            value, end = scan(body, 0)
        except (StopIteration, ValueError):
            end = -1
        if end != len(body) or type(value) is not dict:
            # "\n" * (number - 1) keeps the line number of iter_jsonl's record or error right.
            yield from iter_jsonl(path, "\n" * (number - 1) + line)
            continue
        yield number, value


def battle_dict(judgment: Judgment) -> dict[str, Any]:
    """One judgment as an Arena battle (the answer shown first is ``model_a``).

    Raises:
        ValueError: for INVALID verdicts, which the Arena format cannot express.
    """
    if judgment.verdict is Verdict.INVALID:
        raise ValueError("the Arena format has no invalid verdict")
    return {
        "model_a": judgment.model_a,
        "model_b": judgment.model_b,
        "winner": _EXPORT_WINNER[judgment.verdict],
        "judge": judgment.judge,
        "question_id": judgment.prompt_id,
        "prompt_set": judgment.prompt_set,
    }


def write_judgments(judgments: Iterable[Judgment], out: TextIO) -> tuple[int, int]:
    """Write judgments as an Arena battle JSON list; INVALID ones are left out (the format has none).

    Returns:
        (battles written, invalid judgments left out) so the caller can say so.
    """
    battles: list[dict[str, Any]] = []
    skipped = 0
    for judgment in judgments:
        if judgment.verdict is Verdict.INVALID:
            skipped += 1
            continue
        battles.append(battle_dict(judgment))
    out.write("[\n")
    out.write(",\n".join(json.dumps(b, ensure_ascii=False) for b in battles))
    out.write("\n]\n" if battles else "]\n")
    return len(battles), skipped


FORMAT = Format(
    name="arena",
    kind=RecordKind.JUDGMENTS,
    folder_glob=("*.json", "*.jsonl"),
    default_prompt_set="arena",
    read=read,
    description="Chatbot Arena battles (model_a, model_b, winner), a JSON array or JSONL",
)

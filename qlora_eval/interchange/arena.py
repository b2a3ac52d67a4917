"""Chatbot Arena battles: a JSON array (``clean_battle_*.json``) or JSONL, one battle per object.

Fields: ``model_a`` (shown first), ``model_b``, ``winner`` in ``model_a``/``model_b``/``tie``/
``tie (bothbad)``; optional ``question_id`` (else ``<file name>:<line>`` stands in) and ``judge`` (else
``arena-human``). The exporter writes the same shape, so Arena tooling can read the project's judgments.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
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
    """Read one Arena battle file (JSON array or JSONL) into judgments."""
    prompt_set = options.prompt_set or FORMAT.default_prompt_set or "arena"
    text = read_text(path)
    rows = iter_json_array(path, text) if text.lstrip().startswith("[") else iter_jsonl(path, text)
    judgments: list[Judgment] = []
    stamp = utc_now()  # one import time per file (and not a clock call per line)
    for number, data in rows:
        row = Row(data, path, number)
        model_a, model_b = row.string("model_a"), row.string("model_b")
        if model_a == model_b:
            raise row.error(f"model_a and model_b are both {model_a!r}; expected two different models")
        verdict = row.choice("winner", _WINNERS)
        prompt_id = row.ident("question_id") if row.has("question_id") else f"{path.name}:{number}"
        judgments.append(
            Judgment(
                judge=row.string("judge") if row.has("judge") else DEFAULT_JUDGE,
                model_a=model_a,
                model_b=model_b,
                prompt_set=prompt_set,
                prompt_id=prompt_id,
                verdict=verdict,
                order=Order.of(model_a, model_b),
                source=str(path),
                created_at=stamp,
            )
        )
    return Imported.judgments_of_file(path, judgments, noun="battles", expected="a JSON array or JSONL of battles")


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

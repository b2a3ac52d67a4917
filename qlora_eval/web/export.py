"""Downloads of the admin page: human judgments as JSONL and as Chatbot Arena battles.

Small serializers of our own (``qlora_eval.interchange`` had no exporters when this was written); the JSONL
fields are the ``Judgment`` fields, the Arena records follow the ``clean_battle`` JSON of Chatbot Arena.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from qlora_eval.store import StoredJudgment
from qlora_eval.types import Judgment, Verdict, canonical_json

_ARENA_WINNER = {
    Verdict.A: "model_a",
    Verdict.B: "model_b",
    Verdict.TIE: "tie",
    Verdict.BOTH_BAD: "tie (bothbad)",
}


def judgment_dict(key: str, j: Judgment) -> dict[str, Any]:
    """One judgment as a JSON object (the project's JSONL record)."""
    return {
        "judgment_key": key,
        "judge": j.judge,
        "model_a": j.model_a,
        "model_b": j.model_b,
        "prompt_set": j.prompt_set,
        "prompt_id": j.prompt_id,
        "verdict": j.verdict.value,
        "order": j.order.value,
        "template_hash": j.template_hash,
        "answer_a_key": j.answer_a_key,
        "answer_b_key": j.answer_b_key,
        "rationale": j.rationale,
        "settings": j.settings,
        "created_at": j.created_at,
    }


def to_jsonl(judgments: Iterable[StoredJudgment]) -> str:
    """Judgments as JSONL, one object per line."""
    return "".join(canonical_json(judgment_dict(s.key, s.judgment)) + "\n" for s in judgments)


def to_arena(judgments: Iterable[StoredJudgment]) -> str:
    """Judgments as a Chatbot Arena battle list (INVALID verdicts have no Arena outcome and are left out)."""
    battles = []
    for s in judgments:
        j = s.judgment
        if j.verdict is Verdict.INVALID:
            continue
        battles.append(
            {
                "question_id": f"{j.prompt_set}/{j.prompt_id}",
                "model_a": j.model_a,
                "model_b": j.model_b,
                "winner": _ARENA_WINNER[j.verdict],
                "judge": j.judge,
                "turn": 1,
                "anony": True,
                "language": "unknown",
                "tstamp": datetime.fromisoformat(j.created_at).timestamp(),
            }
        )
    return json.dumps(battles, ensure_ascii=False, indent=1) + "\n"

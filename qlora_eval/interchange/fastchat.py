"""FastChat MT-bench pairwise judgments (``data/mt_bench/model_judgment/gpt-4_pair.jsonl``).

Each line judged one pair twice: game 1 showed ``model_1`` first, game 2 the swapped order. FastChat maps
both games' winners back to ``model_1``/``model_2``/``tie`` (``error`` when the judge output did not parse),
so one line becomes two judgments, one per order. ``judge`` is a name or a list ``[model, prompt name]``
such as ``["gpt-4", "pair-v2"]``: the judge id is the model, the prompt name goes into the settings.
``turn`` (1 or 2) selects the conversation turn; turn 2 is kept as its own prompt id ``<id>-turn2``.
"""

from __future__ import annotations

from pathlib import Path

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

_WINNERS = {"model_1": "model_1", "model_2": "model_2", "tie": "tie", "error": "error"}


def _judge(row: Row) -> tuple[str, dict[str, str]]:
    value = row.raw("judge")
    if isinstance(value, str) and value.strip():
        return value, {}
    if isinstance(value, list) and 1 <= len(value) <= 2 and all(isinstance(v, str) and v.strip() for v in value):
        return value[0], ({"judge_prompt": value[1]} if len(value) == 2 else {})
    raise row.error(f"field 'judge' is {value!r}; expected a name or a list [model, prompt name]")


def _verdict(winner: str, shown_first: str) -> Verdict:
    if winner == "error":
        return Verdict.INVALID
    if winner == "tie":
        return Verdict.TIE
    return Verdict.A if winner == shown_first else Verdict.B


def read(path: Path, options: ImportOptions) -> Imported:
    """Read one FastChat pairwise judgment file into two judgments per line (both orders)."""
    prompt_set = options.prompt_set or FORMAT.default_prompt_set or "mt_bench"
    judgments: list[Judgment] = []
    stamp = utc_now()  # one import time per file (and not a clock call per line)
    for number, data in iter_jsonl(path, read_text(path)):
        row = Row(data, path, number)
        model_1, model_2 = row.string("model_1"), row.string("model_2")
        if model_1 == model_2:
            raise row.error(f"model_1 and model_2 are both {model_1!r}; expected two different models")
        judge, settings = _judge(row)
        turn = row.integer("turn")
        if turn is not None and turn < 1:
            raise row.error(f"field 'turn' is {turn}; expected 1 or more")
        prompt_id = row.ident("question_id")
        if turn is not None and turn > 1:
            prompt_id = f"{prompt_id}-turn{turn}"
        games = (("g1_winner", "g1_judgment", model_1, model_2), ("g2_winner", "g2_judgment", model_2, model_1))
        for game, (winner_field, text_field, first, second) in enumerate(games, start=1):
            winner = row.choice(winner_field, _WINNERS)
            shown_first = "model_1" if first == model_1 else "model_2"
            judgments.append(
                Judgment(
                    judge=judge,
                    model_a=first,
                    model_b=second,
                    prompt_set=prompt_set,
                    prompt_id=prompt_id,
                    verdict=_verdict(winner, shown_first),
                    order=Order.of(first, second),
                    rationale=row.optional_string(text_field) or "",
                    settings={**settings, "game": game},
                    source=f"{path}:{number}",  # file:line, so a conflict can name the line
                    created_at=stamp,
                )
            )
    return Imported.judgments_of_file(path, judgments, noun="judgments", expected="one JSON object per line")


FORMAT = Format(
    name="fastchat",
    kind=RecordKind.JUDGMENTS,
    folder_glob=("*.jsonl",),
    default_prompt_set="mt_bench",
    read=read,
    description="FastChat MT-bench pairwise judgments (model_1, model_2, g1_winner, g2_winner, judge, question_id)",
)

"""One small valid input file per interchange format, with a chosen model name (for name checks and fuzzing)."""

from __future__ import annotations

import json
from pathlib import Path

from qlora_eval.interchange import FORMATS, ImportOptions
from qlora_eval.interchange.jsonl import answer_to_dict, judgment_to_dict
from tests.interchange.fixtures import write_jsonl, write_qlora

#: Formats whose sample needs the real Vicuna prompt file (``shared_data``).
NEEDS_SHARED_DATA = ("qlora-generations",)


def write_sample(
    fmt: str, folder: Path, name: str = "m1", shared_data: Path | None = None
) -> tuple[Path, ImportOptions]:
    """A valid file of format ``fmt`` in which a model (or, for qlora-relative, the reviewer) is called ``name``."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "qlora":
        return write_qlora(folder, name, "other", [1, 2, 3, -1]), ImportOptions()
    if fmt == "fastchat":
        row = {"question_id": 81, "model_1": name, "model_2": "other", "g1_winner": "model_1", "g2_winner": "tie",
               "judge": ["gpt-4", "pair-v2"], "g1_judgment": "[[A]]", "g2_judgment": "[[C]]", "turn": 1}  # fmt: skip
        return write_jsonl(folder / "gpt-4_pair.jsonl", [row, {**row, "question_id": 82}]), ImportOptions()
    if fmt == "arena":
        battles = [{"model_a": name, "model_b": "other", "winner": "model_a", "question_id": "q1"},
                   {"model_a": "other", "model_b": name, "winner": "tie"}]  # fmt: skip
        path = folder / "battles.json"
        path.write_text(json.dumps(battles, indent=1), encoding="utf-8")
        return path, ImportOptions()
    answers_rows = [{"model": name, "prompt_id": 1, "prompt": "Hi?", "text": "Hello"},
                    {"model": "other", "prompt_id": 1, "prompt": "Hi?", "text": "Hey"}]  # fmt: skip
    if fmt == "answers":
        return write_jsonl(folder / "answers.jsonl", answers_rows), ImportOptions(prompt_set="demo")
    if fmt == "jsonl":
        # The format's own writer, fed by a reader that does not check names (FORMAT.read, not read_inputs).
        source = write_jsonl(folder / "source.jsonl", answers_rows)
        answers = FORMATS["answers"].read(source, ImportOptions(prompt_set="demo")).answers
        fastchat_file, fastchat_options = write_sample("fastchat", folder / "f", name)
        judgments = FORMATS["fastchat"].read(fastchat_file, fastchat_options).judgments
        rows = [answer_to_dict(a) for a in answers] + [judgment_to_dict(j) for j in judgments]
        path = folder / "records.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path, ImportOptions()
    if fmt == "qlora-generations":
        path = folder / f"{name}-vicuna-generations-topp0.9-temp0.7.jsonl"
        write_jsonl(path, [{"answer_id": "x1", "model_id": "m", "question_id": 1, "text": "hi"}])
        return path, ImportOptions(prompt_set="vicuna", data_dir=shared_data)
    if fmt == "qlora-relative":
        row = {"question_id": 1, "answer1_id": "a", "answer2_id": "b", "score": [7, 9], "text": "7 9"}
        return write_jsonl(folder / "a-vs-b-gpt-4-reviewer.jsonl", [row]), ImportOptions(reviewer=name)
    raise AssertionError(f"no sample for format {fmt!r}: add one here")

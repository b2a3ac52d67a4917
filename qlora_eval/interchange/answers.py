"""Answers made elsewhere, to be judged here: JSONL rows ``{"model", "prompt_id", "prompt", "text"}``.

Each row becomes an ``Answer`` (model spec ``imported:<model>``, no sampling settings) and its prompt is
stored too, so ``qlora-eval judge`` can show the judge the question. Within an import one prompt id must
always carry the same prompt text, and one model may answer one prompt once.
"""

from __future__ import annotations

from pathlib import Path

from qlora_eval.errors import InputError
from qlora_eval.interchange.base import (
    Format,
    Imported,
    ImportedPrompt,
    ImportOptions,
    RecordKind,
    Row,
    SourceFile,
    iter_jsonl,
    read_text,
    sha256_file,
)
from qlora_eval.types import Answer, Message, Prompt, Role

IMPORTED_SPEC_PREFIX = "imported:"
SET_VERSION = "imported"


def read(path: Path, options: ImportOptions) -> Imported:
    """Read one answers file into answers and the prompts they answer."""
    prompt_set = options.prompt_set or FORMAT.default_prompt_set or "vicuna"
    set_hash = sha256_file(path)
    prompts: dict[str, tuple[Prompt, int]] = {}
    answers: list[Answer] = []
    answered: dict[tuple[str, str], int] = {}
    for number, data in iter_jsonl(path, read_text(path)):
        row = Row(data, path, number)
        model = row.string("model")
        prompt_id = row.ident("prompt_id")
        prompt = Prompt(prompt_set, prompt_id, (Message(Role.USER, row.string("prompt")),))
        text = row.string("text", allow_empty=True)
        seen = prompts.get(prompt_id)
        if seen is not None and seen[0].content_hash != prompt.content_hash:
            raise row.error(f"prompt_id {prompt_id!r} has a different 'prompt' text than on line {seen[1]}")
        prompts.setdefault(prompt_id, (prompt, number))
        if (model, prompt_id) in answered:
            raise row.error(
                f"model {model!r} already answered prompt {prompt_id!r} on line {answered[model, prompt_id]};"
                " expected one answer per model and prompt"
            )
        answered[model, prompt_id] = number
        answers.append(
            Answer(
                model=model,
                model_spec=IMPORTED_SPEC_PREFIX + model,
                prompt_set=prompt_set,
                prompt_id=prompt_id,
                prompt_hash=prompt.content_hash,
                text=text,
                settings={},
            )
        )
    if not answers:
        raise InputError(
            "the file holds no answers; expected JSONL rows with model, prompt_id, prompt, text", source=str(path)
        )
    return Imported(
        answers=tuple(answers),
        prompts=tuple(ImportedPrompt(p, SET_VERSION, set_hash) for p, _ in prompts.values()),
        sources=(SourceFile(str(path), set_hash, len(answers)),),
        answer_sources=tuple(f"{path}:{answered[a.model, a.prompt_id]}" for a in answers),
    )


FORMAT = Format(
    name="answers",
    kind=RecordKind.ANSWERS,
    folder_glob=("*.jsonl",),
    default_prompt_set="vicuna",
    read=read,
    description='answers to judge later: JSONL rows {"model", "prompt_id", "prompt", "text"}',
)

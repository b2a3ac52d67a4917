"""The QLoRA repository's generation files (``eval/generations/<set>/*.jsonl``): the answers the paper judged.

Two row layouts, one per file:

* Guanaco rows: ``question_id``, ``text`` (the question), ``category``, ``prompt`` (what the model was
  given), ``generation`` and ``generation_truncated``;
* baseline rows (``answer_*.jsonl``, from FastChat): ``answer_id``, ``model_id``, ``question_id``, ``text``
  (the answer), optionally ``metadata``.

The model name is the file stem with ``_`` turned into ``-`` (``answer_gpt35`` -> ``answer-gpt35``,
``7b-guanaco-vicuna-generations-topp0.9-temp0.7`` unchanged): the names the repository's review files use.

The answer text is what the paper's reviewer saw: ``eval/eval_gpt_review.py`` takes
``generation_truncated`` when the row has it (else ``generation``) cut at the first
``"A chat between a curious human and an artificial intelligence"`` (the start of a new conversation the
model ran on into), and a baseline row's ``text`` unchanged. We do the same.

Answer ids are kept so reviews that name answers by id can be linked: a baseline row's ``answer_id``, and
for a Guanaco row the id the review script computed, ``shortuuid.uuid(answer text)``.

The prompts come from the prompt set given by ``--prompt-set`` (``vicuna`` or ``oa``, the OA prompts with
all their earlier turns), loaded and checked like every prompt set (``--data-dir`` for offline files).
"""

from __future__ import annotations

from pathlib import Path

from qlora_eval.errors import InputError
from qlora_eval.interchange.answers import IMPORTED_SPEC_PREFIX
from qlora_eval.interchange.base import (
    AnswerId,
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
from qlora_eval.prompts import PromptSet, load_prompt_set
from qlora_eval.types import Answer, Prompt

GUANACO_FIELDS = ("question_id", "text", "category", "prompt", "generation", "generation_truncated")
BASELINE_FIELDS = ("answer_id", "model_id", "question_id", "text")
BASELINE_OPTIONAL = ("metadata",)
# Where eval_gpt_review.py cuts a Guanaco generation: a new conversation the model started on its own.
CUT_MARKER = "A chat between a curious human and an artificial intelligence"


def model_name(path: Path) -> str:
    """The model name of a generation file: its stem with ``_`` as ``-`` (``answer_gpt35`` -> ``answer-gpt35``)."""
    return path.stem.replace("_", "-")


def reviewed_text(row: Row) -> str:
    """The answer text the paper's reviewer saw (see the module docstring)."""
    field = "generation_truncated" if "generation_truncated" in row.data else "generation"
    return row.string(field, allow_empty=True).split(CUT_MARKER)[0]


def shortuuid_of(text: str) -> str:
    """``shortuuid.uuid(text)``: the id eval_gpt_review.py gave an answer without ``answer_id``."""
    import shortuuid  # small pure-Python package; imported here so other formats do not need it

    return str(shortuuid.uuid(text))


def _layout(row: Row) -> str:
    keys = set(row.data)
    if keys == set(GUANACO_FIELDS):
        return "guanaco"
    if set(BASELINE_FIELDS) <= keys <= set(BASELINE_FIELDS) | set(BASELINE_OPTIONAL):
        return "baseline"
    raise row.error(
        f"unknown field set {', '.join(sorted(keys))}; the qlora-generations format expects Guanaco rows with "
        f"{', '.join(GUANACO_FIELDS)} or baseline rows with {', '.join(BASELINE_FIELDS)} "
        f"(and optionally {', '.join(BASELINE_OPTIONAL)})"
    )


def _prompt_of(row: Row, prompts: dict[str, Prompt], prompt_set: PromptSet) -> Prompt:
    prompt_id = row.ident("question_id")
    prompt = prompts.get(prompt_id)
    if prompt is None:
        raise row.error(
            f"question_id {prompt_id!r} is not in prompt set {prompt_set.name!r} ({len(prompt_set)} prompts); "
            "pass the --prompt-set the file answers (vicuna or oa)"
        )
    return prompt


def read(path: Path, options: ImportOptions) -> Imported:
    """Read one generation file into answers, their ids and the prompts they answer."""
    prompt_set = load_prompt_set(options.prompt_set or "vicuna", data_dir=options.data_dir)
    prompts = {p.prompt_id: p for p in prompt_set.prompts}
    model = model_name(path)
    answers: list[Answer] = []
    ids: list[AnswerId] = []
    used: dict[str, Prompt] = {}
    lines: dict[str, int] = {}
    first_layout: tuple[str, int] | None = None
    for number, data in iter_jsonl(path, read_text(path)):
        row = Row(data, path, number)
        layout = _layout(row)
        if first_layout is None:
            first_layout = (layout, number)
        elif layout != first_layout[0]:
            kind, line = first_layout
            raise row.error(f"a {layout} row in a file of {kind} rows (line {line}); keep one kind per file")
        prompt = _prompt_of(row, prompts, prompt_set)
        if prompt.prompt_id in lines:
            raise row.error(
                f"question_id {prompt.prompt_id!r} already answered on line {lines[prompt.prompt_id]}; "
                "expected one answer per question"
            )
        lines[prompt.prompt_id] = number
        if layout == "guanaco":
            question = row.string("text")
            if prompt.question.strip() not in question:
                raise row.error(
                    f"field 'text' is not prompt {prompt_set.name}/{prompt.prompt_id}'s question "
                    f"{prompt.question[:60]!r}; pass the --prompt-set the file answers"
                )
            text = reviewed_text(row)
            external_id = shortuuid_of(text)
        else:
            text = row.string("text", allow_empty=True)
            external_id = row.ident("answer_id")
        answer = Answer(
            model=model,
            model_spec=IMPORTED_SPEC_PREFIX + model,
            prompt_set=prompt_set.name,
            prompt_id=prompt.prompt_id,
            prompt_hash=prompt.content_hash,
            text=text,
            settings={},
        )
        answers.append(answer)
        ids.append(AnswerId(external_id, answer.answer_key, model))
        used[prompt.prompt_id] = prompt
    if not answers:
        raise InputError(
            f"the file holds no answers; expected JSONL rows with {', '.join(GUANACO_FIELDS)} "
            f"or {', '.join(BASELINE_FIELDS)}",
            source=str(path),
        )
    return Imported(
        answers=tuple(answers),
        prompts=tuple(ImportedPrompt(p, prompt_set.version, prompt_set.sha256) for p in used.values()),
        sources=(SourceFile(str(path), sha256_file(path), len(answers)),),
        answer_ids=tuple(ids),
        answer_sources=tuple(f"{path}:{lines[a.prompt_id]}" for a in answers),
    )


FORMAT = Format(
    name="qlora-generations",
    kind=RecordKind.ANSWERS,
    folder_glob=("*-generations-*.jsonl", "answer_*.jsonl"),
    default_prompt_set="vicuna",
    read=read,
    description="the QLoRA repository's generation files (Guanaco rows or answer_*.jsonl baseline rows)",
)

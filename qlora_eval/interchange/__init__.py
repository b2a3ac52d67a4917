"""Importers and exporters (L2, beside the store): one module per format, all with the same shape.

Each format module exposes ``FORMAT`` (a ``base.Format``: name, what it holds, the files of a folder it
reads, its default prompt set and ``read(path, options) -> Imported``). ``read_inputs`` expands folders,
reads every file and checks the batch as a whole; ``qlora_eval.workflows.importing.store_imported`` writes
it in one transaction (in workflows/: it joins the interchange and the store).

Adding a format: write ``qlora_eval/interchange/<name>.py`` with a ``FORMAT`` and list it in ``FORMATS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qlora_eval.errors import ConfigError, InputError, check_name
from qlora_eval.interchange import answers, arena, fastchat, jsonl, qlora, qlora_generations, qlora_relative
from qlora_eval.interchange.base import Format, Imported, ImportOptions, RecordKind, SourceFile
from qlora_eval.interchange.rename import apply_renames, parse_renames

FORMATS: dict[str, Format] = {
    m.FORMAT.name: m.FORMAT for m in (qlora, fastchat, arena, answers, jsonl, qlora_generations, qlora_relative)
}

__all__ = [
    "FORMATS",
    "Format",
    "ImportOptions",
    "Imported",
    "RecordKind",
    "SourceFile",
    "expand_inputs",
    "get_format",
    "parse_renames",
    "read_inputs",
]


def get_format(name: str) -> Format:
    """The format called ``name``.

    Raises:
        ConfigError: unknown name (the message lists the known ones).
    """
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown format {name!r}; expected one of {', '.join(FORMATS)}") from None


def expand_inputs(inputs: Sequence[str | Path], fmt: Format) -> list[Path]:
    """Files to read: each file as given, each folder as its files matching the format's patterns (sorted).

    Raises:
        InputError: a path that does not exist, a folder with no matching file, or no input at all.
    """
    if not inputs:
        raise InputError("no input given; pass one or more files or folders")
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted({p for pattern in fmt.folder_glob for p in path.glob(pattern) if p.is_file()})
            if not found:
                raise InputError(
                    f"the folder has no {fmt.name} files (expected names matching {' or '.join(fmt.folder_glob)})",
                    source=str(path),
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError("no such file or folder; check the path", source=str(path))
    return files


def read_inputs(inputs: Sequence[str | Path], format_name: str, options: ImportOptions) -> Imported:
    """Read every input of one format into one validated batch (nothing is stored).

    Raises:
        ConfigError: an unknown format, or ``--prompt-set`` with a format whose records carry their own.
        InputError: any bad file, line or field (with file and line), or an empty input.
    """
    fmt = get_format(format_name)
    if options.prompt_set is not None and fmt.default_prompt_set is None:
        raise ConfigError(f"--prompt-set does not apply to the {fmt.name} format: its records name their prompt set")
    batch = Imported()
    for path in expand_inputs(inputs, fmt):
        part = fmt.read(path, options)
        check_names(part, str(path))
        batch = batch + part
    if batch.records == 0:
        raise InputError("the input holds no records")
    batch = apply_renames(batch, options.renames)
    _check_consistent(batch)
    return batch


def check_names(batch: Imported, source: str) -> None:
    """Refuse model and judge names with control or bidi characters (:func:`qlora_eval.errors.check_name`).

    Raises:
        InputError: naming the file and the name.
    """
    # Each distinct name once (a million Arena battles name a few hundred models), in order of appearance.
    judgments = batch.judgments
    for name in dict.fromkeys(j.judge for j in judgments):
        check_name(name, "judge name", where=source)
    for name in dict.fromkeys([*(j.model_a for j in judgments), *(j.model_b for j in judgments)]):
        check_name(name, "model name", where=source)
    for name in {a.model for a in batch.answers} | {i.model for i in batch.answer_ids}:
        check_name(name, "model name", where=source)
    for review in batch.relative:
        check_name(review.judge, "judge name", where=source)


def _check_consistent(batch: Imported) -> None:
    """Refuse a batch whose files disagree: one prompt id with two texts, or one answer key with two texts."""
    prompt_hashes: dict[tuple[str, str], str] = {}
    for item in batch.prompts:
        key = (item.prompt.prompt_set, item.prompt.prompt_id)
        seen = prompt_hashes.setdefault(key, item.prompt.content_hash)
        if seen != item.prompt.content_hash:
            raise InputError(
                f"prompt {key[0]}/{key[1]} has different texts in different input files; "
                "import them with different --prompt-set names"
            )
    texts: dict[str, str] = {}
    for answer in batch.answers:
        seen_text = texts.setdefault(answer.answer_key, answer.text)
        if seen_text != answer.text:
            raise InputError(
                f"model {answer.model!r} has two different answers to prompt {answer.prompt_set}/{answer.prompt_id} "
                "in the input files; keep one"
            )

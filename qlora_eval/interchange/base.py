"""What every format module shares: the records an import yields, options, and careful JSON(L) reading.

Readers never touch the store: they turn files into validated records (or raise ``InputError`` naming the
file, the line and what was expected), and ``qlora_eval.workflows.importing`` writes a whole batch in one
transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from qlora_eval.errors import InputError
from qlora_eval.paths import read_text  # the one UTF-8 text reader (L1); importers use it from here
from qlora_eval.prompts import file_sha256 as sha256_file  # the one file hash (L1)
from qlora_eval.types import Answer, Judgment, Prompt


class RecordKind(Enum):
    """What a format holds."""

    JUDGMENTS = "judgments"
    ANSWERS = "answers"
    BOTH = "both"


@dataclass(frozen=True)
class ImportOptions:
    """Options a reader may need.

    Attributes:
        prompt_set: the prompt set the records belong to; ``None`` means the format's default.
        reviewer: the judge name that QLoRA review file names end with (``...-<reviewer>-reviewer.jsonl``);
            the judge of ``qlora-relative`` reviews.
        data_dir: a folder holding the real prompt sets' files (formats that load the set's prompts).
        renames: ``(old, new)`` model names applied to every record read (``--rename OLD=NEW``).
    """

    prompt_set: str | None = None
    reviewer: str = "gpt-4"
    data_dir: Path | None = None
    renames: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SourceFile:
    """One input file: where it was, its sha256 and how many records it gave."""

    path: str
    sha256: str
    records: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "records": self.records}


@dataclass(frozen=True)
class ImportedPrompt:
    """A prompt an import carries, with the version and hash of the set it came from."""

    prompt: Prompt
    set_version: str
    set_hash: str


@dataclass(frozen=True)
class AnswerId:
    """The id another tool gave an answer (QLoRA/FastChat ``answer_id``), linked to the answer's key."""

    external_id: str
    answer_key: str
    model: str


@dataclass(frozen=True)
class RelativeReview:
    """A relative review as read: it names the two shown answers by id, resolved against stored answers later.

    Attributes:
        judge: the reviewer.
        prompt_set, prompt_id: the prompt reviewed.
        answer1_id, answer2_id: ids of the answer shown first and second (the order the judge saw).
        scores: (first, second) scores, ``None`` when the review was unparsable (INVALID, counted).
        rationale: the review text.
        source, line: where the review was read (for error messages).
    """

    judge: str
    prompt_set: str
    prompt_id: str
    answer1_id: str
    answer2_id: str
    scores: tuple[float, float] | None
    rationale: str
    source: str
    line: int


@dataclass(frozen=True)
class Imported:
    """Everything read from one or more files, validated and not yet stored."""

    judgments: tuple[Judgment, ...] = ()
    answers: tuple[Answer, ...] = ()
    prompts: tuple[ImportedPrompt, ...] = ()
    sources: tuple[SourceFile, ...] = ()
    answer_ids: tuple[AnswerId, ...] = ()
    relative: tuple[RelativeReview, ...] = ()
    #: ``file:line`` of each answer, parallel to ``answers`` (error messages name it); see :meth:`answer_place`.
    answer_sources: tuple[str, ...] = ()

    def __add__(self, other: Imported) -> Imported:
        return Imported(
            self.judgments + other.judgments,
            self.answers + other.answers,
            self.prompts + other.prompts,
            self.sources + other.sources,
            self.answer_ids + other.answer_ids,
            self.relative + other.relative,
            tuple(self.answer_place(i) for i in range(len(self.answers)))
            + tuple(other.answer_place(i) for i in range(len(other.answers))),
        )

    def answer_place(self, index: int) -> str:
        """Where answer ``index`` was read (``file:line``), or ``this import`` for a reader that does not say."""
        return self.answer_sources[index] if index < len(self.answer_sources) else "this import"

    @property
    def records(self) -> int:
        return len(self.judgments) + len(self.answers) + len(self.relative)

    def models(self) -> list[str]:
        """Every model named by the records, sorted (relative reviews name answers by id, not models)."""
        names = {j.model_a for j in self.judgments} | {j.model_b for j in self.judgments}
        names |= {a.model for a in self.answers}
        return sorted(names)

    @staticmethod
    def judgments_of_file(path: Path, judgments: list[Judgment], *, noun: str, expected: str) -> Imported:
        """The judgments read from one file, with its hash.

        Raises:
            InputError: naming the file, the ``noun`` it lacks and what was ``expected``, when it held none.
        """
        if not judgments:
            raise InputError(f"the file holds no {noun}; expected {expected}", source=str(path))
        return Imported(judgments=tuple(judgments), sources=(SourceFile(str(path), sha256_file(path), len(judgments)),))


@dataclass(frozen=True)
class Format:
    """One interchange format: its name, what it holds, which files of a folder it reads, and its reader."""

    name: str
    kind: RecordKind
    folder_glob: tuple[str, ...]
    default_prompt_set: str | None
    read: Callable[[Path, ImportOptions], Imported]
    description: str = field(default="")


def iter_jsonl(path: Path, text: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSONL file.

    Raises:
        InputError: a line that is not JSON or not a JSON object (names the file and line).
    """
    body = read_text(path) if text is None else text
    scan = _SCAN_ONCE
    # split("\n"), not splitlines(): the latter also splits on \x1c, \x85, \u2028 ... which JSON leaves unescaped.
    for number, line in enumerate(body.split("\n"), start=1):
        # Fast path: json.loads(line) is the scanner run on the line less JSON whitespace, accepted when it
        # consumes all of it; calling the scanner directly skips json.loads' Python-level wrapper (large
        # files: a million lines). Anything else takes json.loads below, for the same result or error.
        stripped = line.strip(" \t\r")
        try:
            value, end = scan(stripped, 0)
        except (StopIteration, ValueError):
            end = -1
        if end == len(stripped) and type(value) is dict:
            yield number, value
            continue
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"not valid JSON ({exc.msg} at column {exc.colno}); expected one JSON object per line",
                source=str(path),
                line=number,
            ) from exc
        if not isinstance(value, dict):
            raise InputError(
                f"expected a JSON object per line, got {type(value).__name__}", source=str(path), line=number
            )
        yield number, value


# The C scanner behind json.loads (the decoder's scan_once; not in typeshed).
_SCAN_ONCE: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def iter_json_array(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each element of a JSON array, with the line each element starts on.

    Decodes element by element (``raw_decode``) so errors can name the line, which ``json.loads`` cannot.
    """
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos >= len(text) or text[pos] != "[":
        raise InputError("expected a JSON array of objects", source=str(path), line=_line_of(text, pos))
    pos = _skip_ws(text, pos + 1)
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        line = _line_of(text, pos)
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"not valid JSON ({exc.msg}); expected an array of objects", source=str(path), line=exc.lineno
            ) from exc
        if not isinstance(value, dict):
            raise InputError(f"expected a JSON object, got {type(value).__name__}", source=str(path), line=line)
        yield line, value
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            if _skip_ws(text, pos + 1) != len(text):
                raise InputError("unexpected text after the JSON array", source=str(path), line=_line_of(text, pos))
            return
        raise InputError("expected ',' or ']' in the JSON array", source=str(path), line=_line_of(text, pos))


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


class Row:
    """A JSON object from line ``line`` of ``source`` with typed, error-reporting field access."""

    def __init__(self, data: Mapping[str, Any], source: Path, line: int) -> None:
        self.data = data
        self.source = source
        self.line = line

    def error(self, message: str) -> InputError:
        return InputError(message, source=str(self.source), line=self.line)

    def has(self, name: str) -> bool:
        return name in self.data and self.data[name] is not None

    def raw(self, name: str) -> Any:
        if name not in self.data:
            raise self.error(f"missing field {name!r}; expected keys: {name!r} and the format's others")
        return self.data[name]

    def string(self, name: str, *, allow_empty: bool = False, allow_blank: bool = False) -> str:
        """A string field; empty is refused unless ``allow_empty``, whitespace-only unless ``allow_blank``."""
        value = self.raw(name)
        if not isinstance(value, str):
            raise self.error(f"field {name!r} must be a string, got {_describe(value)}")
        if not allow_empty and (not value if allow_blank else not value.strip()):
            raise self.error(f"field {name!r} must not be empty")
        return value

    def optional_string(self, name: str) -> str | None:
        return self.string(name, allow_empty=True) if self.has(name) else None

    def ident(self, name: str) -> str:
        """An id field: a non-empty string or an integer (ids are kept as strings)."""
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.error(f"field {name!r} must be a string or an integer id, got {_describe(value)}")
        text = str(value)
        if not text.strip():
            raise self.error(f"field {name!r} must not be empty")
        return text

    def number(self, name: str) -> float | None:
        if not self.has(name):
            return None
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"field {name!r} must be a number or null, got {_describe(value)}")
        return float(value)

    def integer(self, name: str) -> int | None:
        if not self.has(name):
            return None
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"field {name!r} must be an integer or null, got {_describe(value)}")
        return value

    def mapping(self, name: str) -> dict[str, Any]:
        value = self.raw(name)
        if not isinstance(value, dict):
            raise self.error(f"field {name!r} must be a JSON object, got {_describe(value)}")
        return value

    def choice(self, name: str, allowed: Mapping[str, Any]) -> Any:
        value = self.raw(name)
        if not isinstance(value, str) or value not in allowed:
            options = ", ".join(repr(k) for k in allowed)
            raise self.error(f"field {name!r} is {_describe(value)}; expected one of {options}")
        return allowed[value]


def _describe(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}" if not isinstance(value, str) else text

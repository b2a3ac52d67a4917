"""Training data: JSONL files in four formats and the OASST1 Guanaco set from the hub.

Every row becomes an ``Example``: a sequence of text segments, each marked trainable (an assistant
reply) or not (a prompt, a human turn, template glue), plus where the *target* region starts. The
collator truncates the source region to ``source_max_len`` and the target region to
``target_max_len`` and masks the non-trainable segments.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qlora_eval.errors import InputError, MissingDependencyError
from qlora_eval.paths import read_text
from qlora_eval.train.config import OASST1_HUB_ID, DatasetFormat

# The Alpaca prompts exactly as the QLoRA repository uses them.
ALPACA_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response: "
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response: "
)

HUMAN = "### Human:"
ASSISTANT = "### Assistant:"
_TURN = re.compile(r"(### Human:|### Assistant:)")

# Renders a list of chat messages; ``add_generation_prompt`` appends the assistant header.
ChatRenderer = Callable[[list[dict[str, str]], bool], str]


@dataclass(frozen=True)
class Segment:
    """A piece of an example's text; ``trainable`` pieces carry the loss."""

    text: str
    trainable: bool


@dataclass(frozen=True)
class Example:
    """One training example.

    Attributes:
        segments: the text in order.
        target_start: index of the first segment of the target region (the reply the example teaches);
            segments before it are the source (prompt).
        source: where it came from (``file:line``), for error messages.
    """

    segments: tuple[Segment, ...]
    target_start: int
    source: str


@dataclass(frozen=True)
class LoadedData:
    """Examples plus what identifies the data they came from."""

    examples: list[Example]
    sha256: str
    description: str


def load_examples(
    dataset: str, dataset_format: DatasetFormat, *, chat_renderer: ChatRenderer | None = None
) -> LoadedData:
    """Read a training set.

    Args:
        dataset: ``oasst1`` (the hub set ``timdettmers/openassistant-guanaco``, train split) or a JSONL path.
        dataset_format: how rows are read (``oasst1`` is always ``guanaco``).
        chat_renderer: renders message lists (the tokenizer's chat template); needed for ``chat``.

    Returns:
        The examples, the sha256 of the data and a description.

    Raises:
        InputError: a missing file, a bad row (with file and line), an empty data set.
    """
    if dataset == "oasst1":
        return _load_oasst1()
    path = Path(dataset)
    if not path.is_file():
        raise InputError("training data file not found; pass an existing JSONL file or 'oasst1'", source=dataset)
    raw = path.read_bytes()
    examples = []
    for number, line in enumerate(read_text(path, expected="a JSONL training file").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"not valid JSON ({exc.msg}); each line must be one JSON object", source=dataset, line=number
            ) from exc
        if not isinstance(row, dict):
            raise InputError("each line must be a JSON object", source=dataset, line=number)
        examples.append(parse_row(row, dataset_format, source=dataset, line=number, chat_renderer=chat_renderer))
    if not examples:
        raise InputError("the file has no rows", source=dataset)
    return LoadedData(examples, hashlib.sha256(raw).hexdigest(), f"{dataset} ({dataset_format.value})")


def _load_oasst1() -> LoadedData:
    try:
        import datasets
    except ImportError as exc:
        raise MissingDependencyError("datasets", "pip install 'qlora-eval[hf]'", "--dataset oasst1") from exc
    try:
        ds = datasets.load_dataset(OASST1_HUB_ID, split="train")
    except Exception as exc:  # the hub raises many types (connection, auth, missing split)
        raise InputError(
            f"cannot load the hub dataset {OASST1_HUB_ID} ({exc}); check the network or pass a local JSONL file "
            "with --dataset FILE --dataset-format guanaco",
            source="oasst1",
        ) from exc
    texts = [str(t) for t in ds["text"]]
    examples = [
        parse_row({"text": text}, DatasetFormat.GUANACO, source=OASST1_HUB_ID, line=i + 1)
        for i, text in enumerate(texts)
    ]
    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
    return LoadedData(examples, digest, f"{OASST1_HUB_ID} train split (guanaco)")


def parse_row(
    row: dict[str, Any],
    dataset_format: DatasetFormat,
    *,
    source: str,
    line: int,
    chat_renderer: ChatRenderer | None = None,
) -> Example:
    """Turn one row into an ``Example``.

    Raises:
        InputError: naming ``source`` and ``line``, the missing or bad field and the expected form.
    """
    where = f"{source}:{line}"
    if dataset_format is DatasetFormat.INPUT_OUTPUT:
        prompt = _text_field(row, "input", dataset_format, source, line, allow_empty=True)
        reply = _text_field(row, "output", dataset_format, source, line)
        return Example((Segment(prompt, False), Segment(reply, True)), 1, where)
    if dataset_format is DatasetFormat.ALPACA:
        instruction = _text_field(row, "instruction", dataset_format, source, line)
        context = row.get("input", "")
        if not isinstance(context, str):
            raise InputError("field 'input' must be a string when present (alpaca format)", source=source, line=line)
        reply = _text_field(row, "output", dataset_format, source, line)
        template = ALPACA_PROMPT_INPUT if context else ALPACA_PROMPT_NO_INPUT
        prompt = template.format(instruction=instruction, input=context)
        return Example((Segment(prompt, False), Segment(reply, True)), 1, where)
    if dataset_format is DatasetFormat.GUANACO:
        text = _text_field(row, "text", dataset_format, source, line)
        return Example(_guanaco_segments(text, source, line), 0, where)
    if dataset_format is DatasetFormat.CHAT:
        if chat_renderer is None:
            raise InputError("the chat format needs a tokenizer with a chat template", source=source, line=line)
        return _chat_example(row, chat_renderer, source, line)
    raise AssertionError(f"unhandled format {dataset_format}")


def _text_field(
    row: dict[str, Any], name: str, fmt: DatasetFormat, source: str, line: int, *, allow_empty: bool = False
) -> str:
    if name not in row:
        raise InputError(
            f"missing field {name!r} ({fmt.value} rows need {_FIELDS[fmt]}; got fields {sorted(row)})",
            source=source,
            line=line,
        )
    value = row[name]
    if not isinstance(value, str):
        raise InputError(f"field {name!r} must be a string, got {type(value).__name__}", source=source, line=line)
    if not allow_empty and not value.strip():
        raise InputError(f"field {name!r} is empty", source=source, line=line)
    return value


_FIELDS = {
    DatasetFormat.INPUT_OUTPUT: "'input' and 'output'",
    DatasetFormat.ALPACA: "'instruction', 'output' and optionally 'input'",
    DatasetFormat.GUANACO: "'text' with '### Human: ... ### Assistant: ...'",
    DatasetFormat.CHAT: "'messages': a list of {'role', 'content'} ending with an assistant message",
}


def _guanaco_segments(text: str, source: str, line: int) -> tuple[Segment, ...]:
    """Split ``### Human: ... ### Assistant: ...`` text; the assistant replies are trainable.

    The ``### Assistant:`` marker belongs to the prompt side; the space after it and the reply to the
    trainable side, so the model learns what follows the marker.
    """
    parts = _TURN.split(text)
    if ASSISTANT not in parts:
        raise InputError(
            f"guanaco text must contain '{ASSISTANT}' (form: '{HUMAN} question {ASSISTANT} answer')",
            source=source,
            line=line,
        )
    segments: list[Segment] = []
    in_reply = False
    for part in parts:
        if not part:
            continue
        if part in (HUMAN, ASSISTANT):
            segments.append(Segment(part, False))
            in_reply = part == ASSISTANT
        else:
            segments.append(Segment(part, in_reply))
    if not segments[-1].trainable:
        raise InputError(f"guanaco text must end with an assistant reply after '{ASSISTANT}'", source=source, line=line)
    return _merge(segments)


def _chat_example(row: dict[str, Any], render: ChatRenderer, source: str, line: int) -> Example:
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InputError(
            f"missing or empty field 'messages' (chat rows need {_FIELDS[DatasetFormat.CHAT]})",
            source=source,
            line=line,
        )
    clean: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("role"), str)
            or not isinstance(message.get("content"), str)
        ):
            raise InputError(
                f"messages[{i}] must be an object with string 'role' and 'content'", source=source, line=line
            )
        if message["role"] not in ("system", "user", "assistant"):
            raise InputError(
                f"messages[{i}] has role {message['role']!r}; use system, user or assistant", source=source, line=line
            )
        clean.append({"role": message["role"], "content": message["content"]})
    if clean[-1]["role"] != "assistant":
        raise InputError("the last message must be the assistant's reply", source=source, line=line)
    if clean[0]["role"] == "assistant":
        raise InputError("the conversation must start with a system or user message", source=source, line=line)
    # Render growing prefixes and take the differences, so the template decides all the glue text;
    # assistant contents are the trainable pieces.
    segments: list[Segment] = []
    rendered = ""
    for i, message in enumerate(clean):
        if message["role"] != "assistant":
            continue
        with_header = render(clean[:i], True)
        if not with_header.startswith(rendered):
            raise InputError(
                "the chat template does not render conversations prefix by prefix; use another format",
                source=source,
                line=line,
            )
        segments.append(Segment(with_header[len(rendered) :], False))
        segments.append(Segment(message["content"], True))
        rendered = with_header + message["content"]
        full = render(clean[: i + 1], False)
        if not full.startswith(rendered):
            raise InputError(
                "the chat template changes the assistant text when rendering it; use another format",
                source=source,
                line=line,
            )
        rendered_glue = full[len(rendered) :]
        if i + 1 < len(clean) and rendered_glue:
            segments.append(Segment(rendered_glue, False))
            rendered = full
    merged = _merge([s for s in segments if s.text])
    return Example(merged, len(merged) - 1, f"{source}:{line}")


def _merge(segments: Iterable[Segment]) -> tuple[Segment, ...]:
    """Join neighbours with the same trainability (fewer, longer pieces tokenize more naturally)."""
    out: list[Segment] = []
    for segment in segments:
        if out and out[-1].trainable == segment.trainable:
            out[-1] = Segment(out[-1].text + segment.text, segment.trainable)
        else:
            out.append(segment)
    return tuple(out)


def hf_chat_renderer(tokenizer: Any) -> ChatRenderer:
    """A ``ChatRenderer`` from a transformers tokenizer's chat template."""

    def render(messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt))

    return render

"""The two MMLU prompt formats (QLoRA/Hendrycks and lm-evaluation-harness) and choosing shots."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from qlora_eval.bench.mmlu.data import LETTERS, MmluItem, shots_in_qlora_input
from qlora_eval.errors import ConfigError


class Mode(Enum):
    """Which reference evaluation to reproduce."""

    QLORA = "qlora"
    HARNESS = "harness"


def _subject_words(subject: str) -> str:
    return subject.replace("_", " ")


def _question_block(item: MmluItem) -> str:
    return item.question + "".join(
        f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, item.choices, strict=True)
    )


def qlora_prompt(item: MmluItem, shots: Sequence[MmluItem]) -> str:
    """The QLoRA/Hendrycks prompt text (without BOS), built from the parts.

    The header has two spaces before the subject because Hendrycks' ``format_subject``
    returns the subject with a leading space and the template adds another.
    """
    header = f"The following are multiple choice questions (with answers) about  {_subject_words(item.subject)}.\n\n"
    examples = "".join(f"{_question_block(s)}\nAnswer: {LETTERS[s.answer]}\n\n" for s in shots)
    return header + examples + _question_block(item) + "\nAnswer:"


def harness_prompt(item: MmluItem, shots: Sequence[MmluItem]) -> str:
    """The lm-evaluation-harness ``mmlu`` prompt (its description, first-n shots, "\\n\\n" delimiter)."""

    def text(x: MmluItem) -> str:
        return (
            x.question.strip()
            + "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, x.choices, strict=True))
            + "\nAnswer:"
        )

    description = (
        f"The following are multiple choice questions (with answers) about {_subject_words(item.subject)}.\n\n"
    )
    examples = "".join(f"{text(s)} {LETTERS[s.answer]}\n\n" for s in shots)
    return description + examples + text(item)


def build_prompts(items: Sequence[MmluItem], mode: Mode, shots: int, dev: Sequence[MmluItem] | None) -> list[str]:
    """The prompt text of every item.

    QLoRA-format items (``qlora_input`` set) are used verbatim in qlora mode, and carry their
    shots inside; other items take the first ``shots`` dev questions of their subject.

    Raises:
        ConfigError: when shots are asked for but no dev split is available, or a QLoRA file's
            built-in shot count differs from ``shots``.
    """
    if shots not in (0, 5):
        raise ConfigError(f"--shots must be 0 or 5, got {shots}")
    dev_by_subject: dict[str, list[MmluItem]] = {}
    for d in dev or []:
        dev_by_subject.setdefault(d.subject, []).append(d)
    prompts = []
    for item in items:
        if mode is Mode.QLORA and item.qlora_input is not None:
            found = shots_in_qlora_input(item.qlora_input)
            if found != shots:
                raise ConfigError(
                    f"{item.source}:{item.line}: this QLoRA-format prompt carries {found} shots but --shots is "
                    f"{shots}; pass --shots {found} (QLoRA's five-shot prompts are five_shot_mmlu_*.json)"
                )
            prompts.append(item.qlora_input)
            continue
        examples: list[MmluItem] = []
        if shots:
            examples = dev_by_subject.get(item.subject, [])[:shots]
            if len(examples) < shots:
                raise ConfigError(
                    f"{shots}-shot prompts need {shots} dev questions of {item.subject!r}, found {len(examples)}; "
                    "use --dataset cais/mmlu (its 'dev' split) or --shots 0"
                )
        builder = qlora_prompt if mode is Mode.QLORA else harness_prompt
        prompts.append(builder(item, examples))
    return prompts

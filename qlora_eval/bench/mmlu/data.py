"""MMLU questions: the subjects and their supercategories, and loading (QLoRA-format files, ``cais/mmlu``)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qlora_eval.errors import InputError
from qlora_eval.paths import read_text

LETTERS = ("A", "B", "C", "D")

# Hendrycks et al. (2021), categories.py: subject -> one of the four supercategories.
_STEM = "STEM"
_HUM = "humanities"
_SOC = "social sciences"
_OTHER = "other (business, health, misc.)"
SUPERCATEGORIES: dict[str, str] = {
    "abstract_algebra": _STEM,
    "anatomy": _OTHER,
    "astronomy": _STEM,
    "business_ethics": _OTHER,
    "clinical_knowledge": _OTHER,
    "college_biology": _STEM,
    "college_chemistry": _STEM,
    "college_computer_science": _STEM,
    "college_mathematics": _STEM,
    "college_medicine": _OTHER,
    "college_physics": _STEM,
    "computer_security": _STEM,
    "conceptual_physics": _STEM,
    "econometrics": _SOC,
    "electrical_engineering": _STEM,
    "elementary_mathematics": _STEM,
    "formal_logic": _HUM,
    "global_facts": _OTHER,
    "high_school_biology": _STEM,
    "high_school_chemistry": _STEM,
    "high_school_computer_science": _STEM,
    "high_school_european_history": _HUM,
    "high_school_geography": _SOC,
    "high_school_government_and_politics": _SOC,
    "high_school_macroeconomics": _SOC,
    "high_school_mathematics": _STEM,
    "high_school_microeconomics": _SOC,
    "high_school_physics": _STEM,
    "high_school_psychology": _SOC,
    "high_school_statistics": _STEM,
    "high_school_us_history": _HUM,
    "high_school_world_history": _HUM,
    "human_aging": _OTHER,
    "human_sexuality": _SOC,
    "international_law": _HUM,
    "jurisprudence": _HUM,
    "logical_fallacies": _HUM,
    "machine_learning": _STEM,
    "management": _OTHER,
    "marketing": _OTHER,
    "medical_genetics": _OTHER,
    "miscellaneous": _OTHER,
    "moral_disputes": _HUM,
    "moral_scenarios": _HUM,
    "nutrition": _OTHER,
    "philosophy": _HUM,
    "prehistory": _HUM,
    "professional_accounting": _OTHER,
    "professional_law": _HUM,
    "professional_medicine": _OTHER,
    "professional_psychology": _SOC,
    "public_relations": _SOC,
    "security_studies": _SOC,
    "sociology": _SOC,
    "us_foreign_policy": _SOC,
    "virology": _OTHER,
    "world_religions": _HUM,
}


@dataclass(frozen=True)
class MmluItem:
    """One question.

    Attributes:
        subject: the subject with underscores (``abstract_algebra``).
        question: the question text.
        choices: the four options.
        answer: index of the right option (0..3).
        qlora_input: the verbatim prompt of a QLoRA-format file (used as is in qlora mode).
        source: file or dataset the item came from, and its 1-based ``line`` (row) there.
    """

    subject: str
    question: str
    choices: tuple[str, str, str, str]
    answer: int
    qlora_input: str | None = None
    source: str = ""
    line: int = 0


# The last question of a QLoRA/Hendrycks prompt: "...\n\n{question}\nA. a\nB. b\nC. c\nD. d\nAnswer:".
_LAST_QUESTION = re.compile(
    r"\A(?P<q>.*)\nA\. (?P<a>.*?)\nB\. (?P<b>.*?)\nC\. (?P<c>.*?)\nD\. (?P<d>.*?)\nAnswer:\Z", re.DOTALL
)
_SHOT_END = re.compile(r"\nAnswer: [ABCD]\n\n")


def shots_in_qlora_input(text: str) -> int:
    """How many answered examples a QLoRA-format prompt carries before its question."""
    return len(_SHOT_END.findall(text))


def _parse_qlora_record(record: Any, source: str, line: int) -> MmluItem:
    if not isinstance(record, dict):
        raise InputError("expected a JSON object with 'subject', 'input', 'output'", source=source, line=line)
    for key in ("subject", "input", "output"):
        if not isinstance(record.get(key), str):
            raise InputError(f"field {key!r} is missing or not a string", source=source, line=line)
    subject = record["subject"].strip()
    if subject not in SUPERCATEGORIES:
        raise InputError(
            f"unknown MMLU subject {subject!r} (expected one of the 57 subjects)", source=source, line=line
        )
    output = record["output"].strip()
    if output not in LETTERS:
        raise InputError(f"field 'output' must be one of A, B, C, D, got {output!r}", source=source, line=line)
    text = record["input"]
    body = text.split("\n\n", 1)[1] if "\n\n" in text else text
    # Shots end with "Answer: X\n\n"; the question being asked follows the last of them.
    tail = _SHOT_END.split(body)[-1]
    match = _LAST_QUESTION.search(tail)
    if match is None:
        raise InputError(
            "field 'input' does not end with 'question\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\nAnswer:'",
            source=source,
            line=line,
        )
    choices = (match["a"], match["b"], match["c"], match["d"])
    return MmluItem(
        subject=subject,
        question=match["q"],
        choices=choices,
        answer=LETTERS.index(output),
        qlora_input=text,
        source=source,
        line=line,
    )


def load_qlora_file(path: Path) -> list[MmluItem]:
    """Read a QLoRA-format MMLU file: JSON lines or one JSON array of ``{subject, input, output}``.

    Raises:
        InputError: naming the file and line of a malformed record.
    """
    source = str(path)
    text = read_text(path, expected="an MMLU JSON/JSONL file")
    records: list[tuple[int, Any]] = []
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", source=source, line=exc.lineno) from exc
        records = [(index + 1, record) for index, record in enumerate(data)]
    else:
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                records.append((number, json.loads(raw)))
            except json.JSONDecodeError as exc:
                raise InputError(f"invalid JSON: {exc.msg}", source=source, line=number) from exc
    if not records:
        raise InputError("the file holds no MMLU questions", source=source)
    return [_parse_qlora_record(record, source, number) for number, record in records]


def items_from_rows(rows: Sequence[dict[str, Any]], source: str) -> list[MmluItem]:
    """Turn ``cais/mmlu`` rows (``question``, ``subject``, ``choices``, ``answer`` 0..3) into items."""
    items = []
    for index, row in enumerate(rows, start=1):
        subject, choices, answer = row.get("subject"), row.get("choices"), row.get("answer")
        if not isinstance(subject, str) or subject not in SUPERCATEGORIES:
            raise InputError(f"unknown or missing MMLU subject {subject!r}", source=source, line=index)
        if not isinstance(row.get("question"), str):
            raise InputError("field 'question' is missing or not a string", source=source, line=index)
        if not isinstance(choices, list | tuple) or len(choices) != 4:
            raise InputError("field 'choices' must be a list of 4 strings", source=source, line=index)
        if not isinstance(answer, int) or not 0 <= answer <= 3:
            raise InputError(f"field 'answer' must be 0..3, got {answer!r}", source=source, line=index)
        items.append(
            MmluItem(
                subject=subject,
                question=row["question"],
                choices=(str(choices[0]), str(choices[1]), str(choices[2]), str(choices[3])),
                answer=answer,
                source=source,
                line=index,
            )
        )
    return items


def load_hub_split(dataset: str, split: str) -> list[MmluItem]:
    """Load one split of ``cais/mmlu`` (config ``all``) through ``datasets``.

    ``dataset`` is a hub id, or a local folder holding the hub layout's parquet files
    (``**/{split}-*.parquet`` or ``**/{split}.parquet``), which is read without the network.
    """
    from datasets import load_dataset

    folder = Path(dataset)
    if folder.is_dir():
        files = sorted({*folder.glob(f"**/{split}-*.parquet"), *folder.glob(f"**/{split}.parquet")})
        if not files:
            raise InputError(f"no '{split}' parquet files in the dataset folder", source=dataset)
        data = load_dataset("parquet", data_files=[str(f) for f in files], split="train")
    else:
        try:
            data = load_dataset(dataset, "all", split=split)
        except Exception as exc:  # datasets raises many types (network, missing config, ...)
            raise InputError(f"cannot load split {split!r} of {dataset!r} (config 'all'): {exc}") from exc
    return items_from_rows([dict(row) for row in data], f"{dataset}[{split}]")

"""MMLU figures: micro and macro accuracy, per subject and per supercategory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qlora_eval.bench.mmlu.data import SUPERCATEGORIES, MmluItem
from qlora_eval.bench.mmlu.prompts import Mode


@dataclass(frozen=True)
class GroupScore:
    """Accuracy of a group of questions."""

    accuracy: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {"accuracy": self.accuracy, "n": self.n}


@dataclass(frozen=True)
class MmluResult:
    """The figures ``qlora-eval mmlu --json`` writes.

    ``accuracy`` is the micro average (harness's headline), ``macro_accuracy`` the mean over
    subjects (QLoRA's headline); ``primary`` names the one that matches ``mode``.
    """

    accuracy: float
    macro_accuracy: float
    n: int
    subjects: dict[str, GroupScore]
    supercategories: dict[str, GroupScore]
    mode: Mode
    shots: int

    @property
    def primary(self) -> str:
        return "macro_accuracy" if self.mode is Mode.QLORA else "accuracy"

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "macro_accuracy": self.macro_accuracy,
            "primary": self.primary,
            "n": self.n,
            "subjects": {k: v.to_dict() for k, v in sorted(self.subjects.items())},
            "supercategories": {k: v.to_dict() for k, v in sorted(self.supercategories.items())},
            "mode": self.mode.value,
            "shots": self.shots,
        }


def aggregate(items: Sequence[MmluItem], predictions: Sequence[int], mode: Mode, shots: int) -> MmluResult:
    """Micro/macro accuracy, per subject and per supercategory."""
    if len(items) != len(predictions) or not items:
        raise ValueError("need one prediction per item and at least one item")
    by_subject: dict[str, list[bool]] = {}
    by_super: dict[str, list[bool]] = {}
    for item, pred in zip(items, predictions, strict=True):
        hit = item.answer == pred
        by_subject.setdefault(item.subject, []).append(hit)
        by_super.setdefault(SUPERCATEGORIES[item.subject], []).append(hit)
    subjects = {s: GroupScore(sum(h) / len(h), len(h)) for s, h in by_subject.items()}
    supers = {s: GroupScore(sum(h) / len(h), len(h)) for s, h in by_super.items()}
    hits = sum(item.answer == pred for item, pred in zip(items, predictions, strict=True))
    return MmluResult(
        accuracy=hits / len(items),
        macro_accuracy=sum(g.accuracy for g in subjects.values()) / len(subjects),
        n=len(items),
        subjects=subjects,
        supercategories=supers,
        mode=mode,
        shots=shots,
    )

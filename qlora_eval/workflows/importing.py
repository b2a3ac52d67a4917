"""Storing an imported batch: everything in ONE transaction, so a failure stores nothing.

It lives in workflows/ because it joins two siblings of layer 2: the interchange readers (what a file holds)
and the store (where it goes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from qlora_eval.interchange.answers import IMPORTED_SPEC_PREFIX
from qlora_eval.interchange.base import Imported
from qlora_eval.interchange.qlora_relative import resolve
from qlora_eval.interchange.record_conflicts import check_answer_texts, resolve_relative_conflicts
from qlora_eval.interchange.votes import number_votes, resolve_conflicts
from qlora_eval.store import Store
from qlora_eval.types import Judgment


@dataclass(frozen=True)
class ImportCounts:
    """What an import added: new records and duplicates (already stored, or twice in the input)."""

    judgments_new: int
    judgments_duplicate: int
    answers_new: int
    answers_duplicate: int
    prompts_new: int
    relative_new: int = 0
    relative_duplicate: int = 0
    relative_invalid: int = 0
    judgments_samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "judgments_new": self.judgments_new,
            "judgments_duplicate": self.judgments_duplicate,
            "answers_new": self.answers_new,
            "answers_duplicate": self.answers_duplicate,
            "prompts_new": self.prompts_new,
            "relative_new": self.relative_new,
            "relative_duplicate": self.relative_duplicate,
            "relative_invalid": self.relative_invalid,
            "judgments_samples": self.judgments_samples,
        }


def store_imported(store: Store, batch: Imported, *, conflicts: str = "stop") -> ImportCounts:
    """Store a batch's prompts, models, answers and judgments in one transaction.

    Human votes are each kept as an observation; a machine verdict that contradicts a stored one (or another
    line of the batch) with the same key stops the import (``conflicts="stop"``) or is stored as a repeated
    sample (``"keep"``); see :mod:`qlora_eval.interchange.votes`. Relative reviews with other scores under a
    stored (or earlier) review's key follow the same policy, and an answer with another text than the stored (or
    an earlier) answer under its key always stops the import; see :mod:`qlora_eval.interchange.record_conflicts`.

    Models are recorded with the spec ``imported:<name>`` unless the store knows them already. Answer ids
    are recorded with the answers; relative reviews are resolved against the answer ids stored (including
    this batch's), and an id that cannot be resolved stops the import with nothing stored.

    Raises:
        InputError: a relative review whose answer ids cannot be resolved (file and line named), a conflicting
            machine verdict or relative review under ``conflicts="stop"``, or an answer whose text differs from
            the stored one (both places named); nothing is stored then.
    """

    def stored(keys: Sequence[str]) -> dict[str, tuple[Judgment, int | None]]:
        return {k: (v.judgment, v.run_id) for k, v in store.judgments_by_key(keys).items()}

    with store.atomic():
        judgments = number_votes(batch.judgments, {f.path: f.sha256 for f in batch.sources}, stored)
        judgments = resolve_conflicts(judgments, stored, conflicts)
        # Before anything is written: an answer with another text than the stored one under its key stops here,
        # so no answer id of this batch can point at the old text.
        check_answer_texts(batch, store.answer_texts)
        prompts_new = 0
        key = lambda p: (p.set_version, p.set_hash)  # noqa: E731 - groupby needs the same key twice
        for (version, set_hash), group in groupby(sorted(batch.prompts, key=key), key=key):
            prompts_new += store.add_prompts([p.prompt for p in group], set_version=version, set_hash=set_hash)
        for model in batch.models():
            store.add_model(model, IMPORTED_SPEC_PREFIX + model)
        answers_new = store.add_answers(batch.answers)
        store.add_answer_ids((i.external_id, i.answer_key) for i in batch.answer_ids)
        judgments_new = store.add_judgments(judgments)
        relative = []
        if batch.relative:
            wanted = {r.answer1_id for r in batch.relative} | {r.answer2_id for r in batch.relative}
            relative = resolve(batch.relative, store.answers_by_id(wanted))
            relative = resolve_relative_conflicts(relative, store.relative_by_key, conflicts)
        relative_new = store.add_relative_judgments(relative)
    return ImportCounts(
        judgments_new=judgments_new,
        judgments_duplicate=len(judgments) - judgments_new,
        answers_new=answers_new,
        answers_duplicate=len(batch.answers) - answers_new,
        prompts_new=prompts_new,
        relative_new=relative_new,
        relative_duplicate=len(relative) - relative_new,
        relative_invalid=sum(j.is_invalid for j in relative),
        judgments_samples=sum("sample" in j.settings for j in judgments),
    )

"""Imported answers and relative reviews whose key is known already, but whose content differs.

An answer's key leaves its text out (the key says which call made it, so a stored answer is reused instead of
generated again), and a relative review's key leaves its scores out (the same call on the same inputs). So the
same key with another text or other scores is not a duplicate: it is a conflict, and storing it with
``INSERT OR IGNORE`` would silently keep the old content and count the new one as a duplicate.

* An answer with another text always stops the import, naming both places, and nothing is stored: the store
  keeps one text per answer key, and an answer id of the new file must never point at the old text.
* Relative reviews follow the verdicts' policy (:mod:`qlora_eval.interchange.votes`): ``stop`` names both
  places; ``keep`` stores the other scores as a repeated sample (``settings["sample"] = 2, 3, ...``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from qlora_eval.errors import InputError
from qlora_eval.interchange.base import Imported
from qlora_eval.interchange.votes import CONFLICT_POLICIES
from qlora_eval.types import RelativeJudgment

#: How many repeated samples of one relative call a re-import looks for.
_MAX_SAMPLES = 20

StoredRelative = Callable[[Sequence[str]], Mapping[str, tuple[RelativeJudgment, int | None]]]


def check_answer_texts(batch: Imported, stored_texts: Callable[[Sequence[str]], Mapping[str, str]]) -> None:
    """Stop when an incoming answer has another text than the stored answer (or an earlier one) with its key.

    Raises:
        InputError: naming the incoming answer's ``file:line`` and the other place; nothing is stored then.
    """
    keys = [a.answer_key for a in batch.answers]
    in_store = stored_texts(keys)
    first: dict[str, tuple[str, str]] = {}  # key -> (text, place) of the batch's first answer with it
    problems: list[str] = []
    for index, (answer, key) in enumerate(zip(batch.answers, keys, strict=True)):
        place = batch.answer_place(index)
        if key in in_store:
            other_text, other_place = in_store[key], "the store"
        elif key in first:
            other_text, other_place = first[key]
        else:
            first[key] = (answer.text, place)
            continue
        if answer.text != other_text:
            problems.append(
                f"{place}: {answer.model}'s answer to {answer.prompt_set}/{answer.prompt_id} "
                f"({len(answer.text)} characters) differs from the one in {other_place} ({len(other_text)} characters)"
            )
    if problems:
        shown = "\n  ".join(problems[:5])
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise InputError(
            f"{len(problems)} answer{'s' if len(problems) != 1 else ''} with the same model, prompt and settings as "
            f"a stored or earlier answer but another text:\n  {shown}{more}\n"
            "Nothing was stored. A store keeps one text per model and prompt: import the new answers under "
            "another model name (--rename OLD=NEW) or into another --db, or drop the wrong file."
        )


def resolve_relative_conflicts(
    judgments: Sequence[RelativeJudgment], stored: StoredRelative, policy: str
) -> list[RelativeJudgment]:
    """Check relative reviews against the store and each other; return what to store.

    The same scores again are a plain duplicate; other scores under the same key are a conflict.

    Args:
        judgments: incoming relative judgments (resolved).
        stored: keys -> (stored relative judgment, run id) for the keys already in the store.
        policy: ``stop`` (raise on any conflict) or ``keep`` (store other scores as repeated samples).

    Raises:
        InputError: a conflict under ``stop``: both places named, nothing stored, and how to keep both.
    """
    if policy not in CONFLICT_POLICIES:
        raise InputError(f"--conflicts must be one of {list(CONFLICT_POLICIES)}, got {policy!r}")
    keys = [j.judgment_key for j in judgments]
    in_store = stored(keys)
    first_seen: dict[str, RelativeJudgment] = {}
    samples: dict[str, list[RelativeJudgment]] = {}
    conflicts: list[str] = []
    out: list[RelativeJudgment] = []
    for j, key in zip(judgments, keys, strict=True):
        if key in in_store:
            other, run_id = in_store[key]
            place = other.source or (f"the store (run {run_id})" if run_id is not None else "the store")
        elif key in first_seen:
            other, place = first_seen[key], first_seen[key].source or "an earlier line of this import"
        else:
            first_seen[key] = j
            samples[key] = [j]
            out.append(j)
            continue
        known = samples.setdefault(key, [other, *_stored_samples(j, stored)])
        same = next((k for k in known if k.scores == j.scores), None)
        if same is not None:
            out.append(replace(j, settings=same.settings))  # the same scores again: a plain duplicate
            continue
        conflicts.append(
            f"{j.source or 'this import'}: {j.judge} on {j.prompt_set}/{j.prompt_id} ({j.model_a} shown first, "
            f"{j.model_b} second) scores {_scores(j)}, but {place} scores {_scores(other)}"
        )
        known.append(j)
        out.append(replace(j, settings={**j.settings, "sample": len(known)}))
    if conflicts and policy == "stop":
        shown = "\n  ".join(conflicts[:5])
        more = f"\n  ... and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
        raise InputError(
            f"{len(conflicts)} conflicting relative review{'s' if len(conflicts) != 1 else ''}: the same judge call "
            f"(same judge, template, prompt, answers, order and settings) has other scores:\n  {shown}{more}\n"
            "Nothing was stored. If the judge really gave both (sampling noise), keep both as repeated samples "
            "with --conflicts keep; otherwise fix or drop the wrong file."
        )
    return out


def _scores(j: RelativeJudgment) -> str:
    return "INVALID" if j.scores is None else f"{j.scores[0]:g}/{j.scores[1]:g}"


def _stored_samples(judgment: RelativeJudgment, stored: StoredRelative) -> list[RelativeJudgment]:
    """Repeated samples of this call already stored (``--conflicts keep`` earlier), so a re-import adds nothing."""
    candidates = [replace(judgment, settings={**judgment.settings, "sample": n}) for n in range(2, _MAX_SAMPLES + 1)]
    found = stored([c.judgment_key for c in candidates])
    return [found[c.judgment_key][0] for c in candidates if c.judgment_key in found]

"""Imported verdicts as observations: human votes are each kept; a machine verdict that contradicts a stored one
(same content key, other verdict) is a conflict.

* A human vote (judge ``human:<rater>`` or ``arena-human``, the Arena's default) is one observation: several votes
  on the same pair, prompt and order by the same judge id are all kept. Each vote's key gets the file's sha256 and
  the vote's number among the file's identical keys (``settings["vote"]``), so re-importing the same file adds
  nothing while another file's votes are new observations. A vote that carries its number already (our own
  export of imported votes) keeps it, and a vote without one whose plain key is stored already (our own export
  of web-form votes, which are stored unnumbered) is that stored vote again: re-importing an export adds nothing.
* A machine verdict is a deterministic call's result: the same key means the same call. The same verdict again
  is a duplicate; a different verdict is a conflict. By default the import stops, naming both places (file:line
  or the run that judged it), and stores nothing; ``--conflicts keep`` stores it as a repeated sample
  (``settings["sample"] = 2, 3, ...``) for judge-noise statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from qlora_eval.errors import InputError
from qlora_eval.types import Judgment

#: Judge ids that are people's votes (besides the ``human:`` prefix every rater of the web form gets).
HUMAN_JUDGES = ("arena-human",)
HUMAN_PREFIX = "human:"
CONFLICT_POLICIES = ("stop", "keep")


def is_human_vote(judgment: Judgment) -> bool:
    """Whether a verdict is a person's vote (kept as its own observation)."""
    return judgment.judge.startswith(HUMAN_PREFIX) or judgment.judge in HUMAN_JUDGES


def file_of(source: str | None) -> str:
    """The file part of a ``file:line`` source."""
    if source is None:
        return ""
    head, sep, tail = source.rpartition(":")
    return head if sep and tail.isdigit() else source


def number_votes(
    judgments: Sequence[Judgment],
    file_sha256: Mapping[str, str],
    stored_keys: Callable[[Sequence[str]], Collection[str]],
) -> list[Judgment]:
    """Human votes keyed as observations of their file (see the module docstring); other verdicts unchanged.

    Args:
        judgments: verdicts as read.
        file_sha256: file path -> its sha256 (the votes' numbers belong to their file).
        stored_keys: which of the given judgment keys the store holds already.
    """
    plain = [j.judgment_key for j in judgments if is_human_vote(j) and "vote" not in j.settings]
    already = set(stored_keys(plain))
    seen: dict[tuple[str, str], int] = {}
    out = []
    for j in judgments:
        if not is_human_vote(j) or "vote" in j.settings:
            out.append(j)  # a machine verdict, or a vote numbered already (our own export): its key as it is
            continue
        key = j.judgment_key
        if key in already:
            already.discard(key)  # the stored unnumbered vote itself (one per key): a duplicate, once
            out.append(j)
            continue
        path = file_of(j.source)
        digest = file_sha256.get(path, path)
        slot = (digest, key)
        seen[slot] = seen.get(slot, 0) + 1
        out.append(replace(j, settings={**j.settings, "vote": f"{digest[:16]}:{seen[slot]}"}))
    return out


@dataclass(frozen=True)
class Conflict:
    """An incoming verdict that contradicts another one with the same key."""

    incoming: Judgment
    other: Judgment
    other_place: str

    def describe(self) -> str:
        j = self.incoming
        return (
            f"{j.source or 'this import'}: {j.judge} on {j.prompt_set}/{j.prompt_id} ({j.model_a} shown first, "
            f"{j.model_b} second) says {j.verdict.value}, but {self.other_place} says {self.other.verdict.value}"
        )


def resolve_conflicts(
    judgments: Sequence[Judgment],
    stored: Callable[[Sequence[str]], Mapping[str, tuple[Judgment, int | None]]],
    policy: str,
) -> list[Judgment]:
    """Check machine verdicts against the store and each other; return what to store.

    Args:
        judgments: incoming verdicts (human votes already numbered by :func:`number_votes`).
        stored: keys -> (stored judgment, run id) for the keys already in the store.
        policy: ``stop`` (raise on any conflict) or ``keep`` (store conflicting verdicts as repeated samples).

    Raises:
        InputError: a conflict under ``stop``: both places named, nothing stored, and how to keep both.
    """
    if policy not in CONFLICT_POLICIES:
        raise InputError(f"--conflicts must be one of {list(CONFLICT_POLICIES)}, got {policy!r}")
    keys = [j.judgment_key for j in judgments]
    in_store = stored(keys)
    first_seen: dict[str, Judgment] = {}
    conflicts: list[Conflict] = []
    samples: dict[str, list[Judgment]] = {}  # key -> the different verdicts seen for it, stored one first
    out: list[Judgment] = []
    for j, key in zip(judgments, keys, strict=True):
        if is_human_vote(j):
            out.append(j)
            continue
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
        same = next((k for k in known if k.verdict is j.verdict), None)
        if same is not None:
            out.append(replace(j, settings=same.settings))  # the same verdict again: a plain duplicate
            continue
        conflicts.append(Conflict(j, other, place))
        known.append(j)
        # The n-th different verdict for a key becomes sample n (the stored/first one is sample 1).
        out.append(replace(j, settings={**j.settings, "sample": len(known)}))
    if conflicts and policy == "stop":
        shown = "\n  ".join(c.describe() for c in conflicts[:5])
        more = f"\n  ... and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
        raise InputError(
            f"{len(conflicts)} conflicting verdict{'s' if len(conflicts) != 1 else ''}: the same judge call (same "
            f"judge, template, prompt, answers, order and settings) has a different verdict:\n  {shown}{more}\n"
            "Nothing was stored. If the judge really gave both (sampling noise), keep both as repeated samples "
            "for judge-noise statistics with --conflicts keep; otherwise fix or drop the wrong file."
        )
    return out


def _stored_samples(
    judgment: Judgment, stored: Callable[[Sequence[str]], Mapping[str, tuple[Judgment, int | None]]]
) -> list[Judgment]:
    """Repeated samples of this call already stored (``--conflicts keep`` earlier), so a re-import adds nothing."""
    candidates = [replace(judgment, settings={**judgment.settings, "sample": n}) for n in range(2, _MAX_SAMPLES + 1)]
    found = stored([c.judgment_key for c in candidates])
    return [found[c.judgment_key][0] for c in candidates if c.judgment_key in found]


#: How many repeated samples of one call a re-import looks for.
_MAX_SAMPLES = 20

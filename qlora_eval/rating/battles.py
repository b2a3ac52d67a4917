"""Turn a list of :class:`~qlora_eval.types.Battle` records into the arrays every rating algorithm uses.

Shapes below use ``n`` for the number of *valid* battles (every verdict except ``INVALID``), ``m`` for the
number of models and ``P`` for the number of distinct prompts. ``INVALID`` verdicts are counted (overall
and per model) and never rated: they do not become ties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qlora_eval.errors import InputError
from qlora_eval.types import Battle, Verdict

# Codes of ``BattleArrays.verdict_code``; INVALID never gets one because it never reaches the arrays.
VERDICT_A = 0
VERDICT_B = 1
VERDICT_TIE = 2
VERDICT_BOTH_BAD = 3

_CODE = {Verdict.A: VERDICT_A, Verdict.B: VERDICT_B, Verdict.TIE: VERDICT_TIE, Verdict.BOTH_BAD: VERDICT_BOTH_BAD}
_SCORE_OF_CODE = np.array([1.0, 0.0, 0.5, 0.5])
_CODE_OR_INVALID = {**_CODE, Verdict.INVALID: -1}
_CODE_OF_VALUE = {verdict.value: code for verdict, code in _CODE_OR_INVALID.items()}


@dataclass(frozen=True, eq=False)
class BattleArrays:
    """The valid battles as index arrays, plus the counts of everything (INVALID included).

    Attributes:
        models: every model named by any battle (valid or INVALID), sorted; index ``i`` of every
            per-model array and of every matrix row/column is ``models[i]``.
        a_idx: shape ``(n,)`` intp, index of the model shown first in each valid battle.
        b_idx: shape ``(n,)`` intp, index of the model shown second.
        score_a: shape ``(n,)`` float64, score of the first-shown model: 1 win, 0 loss, 0.5 tie or both bad.
        verdict_code: shape ``(n,)`` int8, ``VERDICT_A``/``VERDICT_B``/``VERDICT_TIE``/``VERDICT_BOTH_BAD``.
        prompt_idx: shape ``(n,)`` intp, index into ``prompts`` (the bootstrap resamples these groups).
        prompts: distinct prompt ids of the valid battles, sorted.
        judge_idx: shape ``(n,)`` intp, index into ``judges``.
        judges: distinct judge ids of the valid battles, sorted.
        source_idx: shape ``(n,)`` intp, position of each valid battle in the input sequence.
        invalid: number of INVALID verdicts in the input.
        invalid_per_model: shape ``(m,)`` int64, INVALID verdicts each model took part in.
        wins: shape ``(m,)`` int64, valid battles each model won (either position).
        losses: shape ``(m,)`` int64, valid battles each model lost.
        ties: shape ``(m,)`` int64, valid battles each model tied (TIE or BOTH_BAD).
    """

    models: tuple[str, ...]
    a_idx: np.ndarray
    b_idx: np.ndarray
    score_a: np.ndarray
    verdict_code: np.ndarray
    prompt_idx: np.ndarray
    prompts: tuple[str, ...]
    judge_idx: np.ndarray
    judges: tuple[str, ...]
    source_idx: np.ndarray
    invalid: int
    invalid_per_model: np.ndarray
    wins: np.ndarray
    losses: np.ndarray
    ties: np.ndarray

    @property
    def n_battles(self) -> int:
        """Number of valid (rated) battles ``n``."""
        return int(self.a_idx.shape[0])

    @property
    def n_models(self) -> int:
        """Number of models ``m``."""
        return len(self.models)

    def model_index(self, model: str) -> int:
        """Index of ``model`` in :attr:`models`.

        Raises:
            InputError: when no battle names the model.
        """
        try:
            return self.models.index(model)
        except ValueError:
            raise InputError(f"model {model!r} is in no battle; known models: {', '.join(self.models)}") from None


def battle_arrays(battles: Sequence[Battle]) -> BattleArrays:
    """Index the battles: sorted model names, per-battle index arrays and per-model counts.

    Args:
        battles: the battles in any order; ``model_a`` is the model shown first and the verdict is
            about that order. INVALID verdicts are counted, not rated.

    Returns:
        The arrays described in :class:`BattleArrays`.

    Raises:
        InputError: when ``battles`` is empty.
    """
    return battle_arrays_from_columns(
        [b.model_a for b in battles],
        [b.model_b for b in battles],
        [b.verdict for b in battles],
        [b.prompt_id for b in battles],
        [b.judge for b in battles],
    )


def battle_arrays_from_columns(
    model_a: Sequence[str],
    model_b: Sequence[str],
    verdicts: Sequence[Verdict],
    prompt_ids: Sequence[str],
    judges: Sequence[str],
) -> BattleArrays:
    """:func:`battle_arrays` of battles given as columns (entry ``i`` of each column is battle ``i``).

    Large inputs come this way: a million :class:`~qlora_eval.types.Battle` objects cost seconds to build,
    the columns a fraction of that. The arrays are the same as those of the battles the columns describe.

    Raises:
        InputError: when there are no battles.
        ValueError: columns of different lengths.
    """
    n_input = len(model_a)
    if not n_input:
        raise InputError("there are no battles to rate; import or judge some first")
    if {len(model_b), len(verdicts), len(prompt_ids), len(judges)} != {n_input}:
        raise ValueError("battle columns must all have one entry per battle")
    models = tuple(sorted(set(model_a) | set(model_b)))
    model_pos = {name: i for i, name in enumerate(models)}
    m = len(models)
    # Column-wise passes (np.fromiter over a map) rather than one loop of appends: at a million Arena
    # battles this is several times faster.
    all_a = np.fromiter(map(model_pos.__getitem__, model_a), dtype=np.intp, count=n_input)
    all_b = np.fromiter(map(model_pos.__getitem__, model_b), dtype=np.intp, count=n_input)
    # Keyed by the member's value: Enum.__hash__ is Python code, str's is not.
    all_code = np.fromiter((_CODE_OF_VALUE[v._value_] for v in verdicts), dtype=np.int8, count=n_input)
    valid = all_code >= 0
    source_idx = np.flatnonzero(valid).astype(np.intp)
    invalid_per_model = (np.bincount(all_a[~valid], minlength=m) + np.bincount(all_b[~valid], minlength=m)).astype(
        np.int64
    )
    a_idx, b_idx, verdict_code = all_a[valid], all_b[valid], all_code[valid]
    if source_idx.shape[0] == n_input:  # no INVALID verdict (the common case): no copies of the columns
        valid_prompts, valid_judges = prompt_ids, judges
    else:
        keep = source_idx.tolist()
        valid_prompts, valid_judges = [prompt_ids[i] for i in keep], [judges[i] for i in keep]
    prompts, prompt_idx = _sorted_index(valid_prompts)
    judge_names, judge_idx = _sorted_index(valid_judges)
    score_a = _SCORE_OF_CODE[verdict_code] if verdict_code.size else np.zeros(0)
    decisive_a = verdict_code == VERDICT_A
    decisive_b = verdict_code == VERDICT_B
    tie = ~(decisive_a | decisive_b)
    wins = np.bincount(a_idx[decisive_a], minlength=m) + np.bincount(b_idx[decisive_b], minlength=m)
    losses = np.bincount(b_idx[decisive_a], minlength=m) + np.bincount(a_idx[decisive_b], minlength=m)
    ties = np.bincount(a_idx[tie], minlength=m) + np.bincount(b_idx[tie], minlength=m)
    return BattleArrays(
        models=models,
        a_idx=a_idx,
        b_idx=b_idx,
        score_a=np.asarray(score_a, dtype=np.float64),
        verdict_code=verdict_code,
        prompt_idx=prompt_idx,
        prompts=prompts,
        judge_idx=judge_idx,
        judges=judge_names,
        source_idx=source_idx,
        invalid=n_input - int(source_idx.shape[0]),
        invalid_per_model=invalid_per_model,
        wins=wins.astype(np.int64),
        losses=losses.astype(np.int64),
        ties=ties.astype(np.int64),
    )


def _sorted_index(values: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """Distinct values, sorted, and each value's index among them (shape ``(len(values),)`` intp)."""
    # C-level passes (dict.fromkeys, sorted, map): a million distinct Arena prompt ids take well under a second.
    distinct = sorted(dict.fromkeys(values))
    position = {value: i for i, value in enumerate(distinct)}
    return tuple(distinct), np.fromiter(map(position.__getitem__, values), dtype=np.intp, count=len(values))


def battle_counts(arrays: BattleArrays) -> np.ndarray:
    """Valid battles between each pair of models, either order.

    Returns:
        Shape ``(m, m)`` int64, symmetric, zero diagonal.
    """
    m = arrays.n_models
    counts = np.zeros((m, m), dtype=np.int64)
    np.add.at(counts, (arrays.a_idx, arrays.b_idx), 1)
    return counts + counts.T


def check_ratable(arrays: BattleArrays) -> None:
    """Check that ratings can be compared at all: >= 2 models, each in a valid battle, all connected.

    Raises:
        InputError: when there are no valid battles, a model has only INVALID verdicts, or the models
            split into groups that never meet (directly or through others), so that a rating in one
            group says nothing about one in the other.
    """
    if arrays.n_battles == 0:
        raise InputError(
            f"all {arrays.invalid} verdicts are INVALID (unparsable); nothing can be rated. "
            "Check the judge output or re-judge those battles"
        )
    played = arrays.wins + arrays.losses + arrays.ties
    idle = [arrays.models[i] for i in np.flatnonzero(played == 0)]
    if idle:
        raise InputError(
            f"model(s) {', '.join(idle)} have no valid battle (only INVALID verdicts); "
            "re-judge their battles or leave them out"
        )
    if arrays.n_models < 2:
        raise InputError("rating needs battles between at least two models")
    reach = battle_counts(arrays) > 0
    for _ in range(max(1, (arrays.n_models - 1).bit_length())):
        reach = reach | ((reach.astype(np.float64) @ reach.astype(np.float64)) > 0)  # paths twice as long
    np.fill_diagonal(reach, True)
    labels = np.argmax(reach, axis=1)  # the lowest-numbered model each one reaches names its group
    group_ids = sorted(set(labels.tolist()))
    n_groups = len(group_ids)
    if n_groups > 1:
        groups = [sorted(arrays.models[i] for i in np.flatnonzero(labels == g)) for g in group_ids]
        described = "; ".join("{" + ", ".join(g) + "}" for g in groups)
        raise InputError(
            f"the models form {n_groups} groups that never meet: {described}. "
            "Ratings across groups are meaningless; add battles between the groups"
        )

"""The vectorised position-bias statistics against the plain dict-of-lists definition."""

from __future__ import annotations

import numpy as np
import pytest

from qlora_eval.rating import battle_arrays, position_bias, position_bias_by_judge
from qlora_eval.rating.battles import VERDICT_A, VERDICT_B, BattleArrays
from qlora_eval.types import Battle, Verdict

_SWAP = {0: 1, 1: 0, 2: 2, 3: 3}


def _reference(arrays: BattleArrays, judge: int | None) -> tuple[int, int, int, int]:
    """(decisive, first wins, swap pairs, consistent pairs), written plainly (the previous implementation)."""
    groups: dict[tuple[int, int, int, int], tuple[list[int], list[int]]] = {}
    decisive = first = 0
    for i in range(arrays.n_battles):
        j = int(arrays.judge_idx[i])
        if judge is not None and j != judge:
            continue
        code = int(arrays.verdict_code[i])
        decisive += code in (VERDICT_A, VERDICT_B)
        first += code == VERDICT_A
        a, b = int(arrays.a_idx[i]), int(arrays.b_idx[i])
        forward = a < b
        key = (int(arrays.prompt_idx[i]), min(a, b), max(a, b), j)
        fwd, swp = groups.setdefault(key, ([], []))
        (fwd if forward else swp).append(code if forward else _SWAP[code])
    pairs = consistent = 0
    for fwd, swp in groups.values():
        for x, y in zip(fwd, swp, strict=False):
            pairs += 1
            consistent += x == y
    return decisive, first, pairs, consistent


@pytest.mark.parametrize("seed", range(8))
def test_vectorised_bias_equals_plain_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    models, judges, prompts = ["m0", "m1", "m2", "m3"], ["j0", "j1", "j2"], [f"p{i}" for i in range(5)]
    verdicts = [Verdict.A, Verdict.B, Verdict.TIE, Verdict.BOTH_BAD, Verdict.INVALID]
    battles = []
    for _ in range(400):  # repeated (prompt, pair, judge) in both orders, unequal counts per order
        a, b = rng.choice(4, size=2, replace=False)
        battles.append(
            Battle(
                models[a],
                models[b],
                verdicts[int(rng.integers(0, 5))],
                prompt_id=str(rng.choice(prompts)),
                judge=str(rng.choice(judges)),
            )
        )
    arrays = battle_arrays(battles)
    overall = position_bias(arrays)
    expected = _reference(arrays, None)
    assert (overall.decisive, overall.first_wins, overall.swap_pairs, overall.swap_consistent) == expected
    assert expected[2] > 50  # the data really has swap pairs
    for j, name in enumerate(arrays.judges):
        bias = position_bias_by_judge(arrays)[name]
        assert (bias.decisive, bias.first_wins, bias.swap_pairs, bias.swap_consistent) == _reference(arrays, j)

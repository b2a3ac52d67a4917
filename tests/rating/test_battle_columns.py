"""Battles given as columns (the way large inputs reach the rating engine) give the same arrays and ranking."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from qlora_eval.errors import InputError
from qlora_eval.rating import RatingMethod, rank_battles
from qlora_eval.rating.battles import BattleArrays, battle_arrays, battle_arrays_from_columns
from qlora_eval.types import Battle, Verdict
from tests.rating.helpers import synthetic_battles

STRENGTHS = {"m1": 1100.0, "m2": 1000.0, "m3": 950.0, "m4": 900.0}


def _columns(battles: list[Battle]) -> BattleArrays:
    return battle_arrays_from_columns(
        [b.model_a for b in battles],
        [b.model_b for b in battles],
        [b.verdict for b in battles],
        [b.prompt_id for b in battles],
        [b.judge for b in battles],
    )


def _with_invalid(battles: list[Battle]) -> list[Battle]:
    """Every 7th verdict INVALID and one BOTH_BAD (the codes the arrays must carry through)."""
    out = [
        Battle(b.model_a, b.model_b, Verdict.INVALID, b.prompt_id, b.judge) if i % 7 == 3 else b
        for i, b in enumerate(battles)
    ]
    out[5] = Battle(out[5].model_a, out[5].model_b, Verdict.BOTH_BAD, out[5].prompt_id, out[5].judge)
    return out


@pytest.mark.parametrize("invalid", [False, True])
def test_columns_give_the_same_arrays_as_battles(invalid: bool) -> None:
    battles = synthetic_battles(np.random.default_rng(3), STRENGTHS, 9, judges=("j1", "j2"))
    if invalid:
        battles = _with_invalid(battles)
    expected, got = battle_arrays(battles), _columns(battles)
    for name in BattleArrays.__dataclass_fields__:
        want, have = getattr(expected, name), getattr(got, name)
        if isinstance(want, np.ndarray):
            assert have.dtype == want.dtype, name
            np.testing.assert_array_equal(have, want, err_msg=name)
        else:
            assert have == want, name
    assert got.invalid == (sum(1 for b in battles if b.verdict is Verdict.INVALID))


@pytest.mark.parametrize("method", [RatingMethod.ELO, RatingMethod.BT])
def test_rank_battles_takes_arrays_with_the_same_result(method: RatingMethod) -> None:
    battles = _with_invalid(synthetic_battles(np.random.default_rng(4), STRENGTHS, 12))
    lengths = ([float(i % 50) for i in range(len(battles))], [float(i % 30) for i in range(len(battles))])
    one = rank_battles(battles, method, 50, np.random.default_rng(0), answer_lengths=lengths)
    two = rank_battles(_columns(battles), method, 50, np.random.default_rng(0), answer_lengths=lengths)
    assert one.to_json_dict() == two.to_json_dict()


def test_empty_and_ragged_columns_are_refused() -> None:
    with pytest.raises(InputError, match="no battles"):
        battle_arrays_from_columns([], [], [], [], [])
    with pytest.raises(ValueError, match="one entry per battle"):
        battle_arrays_from_columns(["a", "b"], ["b", "a"], [Verdict.A], ["p", "p"], ["j", "j"])


def test_importing_the_package_loads_no_fit_module() -> None:
    """``qlora-eval rank`` imports the package at start-up: it must not pay for numba, scipy or the fits."""
    code = (
        "import sys, qlora_eval.rating as r\n"
        "heavy = [m for m in ('numba', 'scipy', 'qlora_eval.rating.adjusted', 'qlora_eval.rating.ranking') "
        "if m in sys.modules]\n"
        "from qlora_eval.rating import fit_options, rank_battles, TieModel\n"
        "module = sys.modules['qlora_eval.rating.fit_options']\n"
        "from qlora_eval.rating import fit_options as again\n"
        "print(heavy, callable(fit_options), again is module.fit_options, rank_battles.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert out == ["[]", "True", "True", "qlora_eval.rating.ranking"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import qlora_eval.rating as rating

        _ = rating.nope

from __future__ import annotations

import numpy as np
import pytest

from qlora_eval.errors import InputError
from qlora_eval.rating import battle_arrays, battle_counts, check_ratable
from qlora_eval.rating.battles import VERDICT_BOTH_BAD, VERDICT_TIE
from qlora_eval.types import Battle, Verdict


def test_arrays_index_sorted_models_and_score_valid_battles() -> None:
    battles = [
        Battle("zeta", "alpha", Verdict.A, prompt_id="q2", judge="j"),
        Battle("alpha", "zeta", Verdict.BOTH_BAD, prompt_id="q1", judge="j"),
        Battle("alpha", "mid", Verdict.INVALID, prompt_id="q1", judge="j"),
        Battle("mid", "zeta", Verdict.B, prompt_id="q1", judge="k"),
        Battle("mid", "alpha", Verdict.TIE, prompt_id="q2", judge="k"),
    ]
    arrays = battle_arrays(battles)
    assert arrays.models == ("alpha", "mid", "zeta")
    assert arrays.n_battles == 4
    assert arrays.invalid == 1
    assert arrays.invalid_per_model.tolist() == [1, 1, 0]
    assert arrays.a_idx.tolist() == [2, 0, 1, 1]
    assert arrays.b_idx.tolist() == [0, 2, 2, 0]
    # BOTH_BAD scores as a tie but keeps its own code (the bias statistics tell them apart).
    assert arrays.score_a.tolist() == [1.0, 0.5, 0.0, 0.5]
    assert arrays.verdict_code.tolist()[1] == VERDICT_BOTH_BAD
    assert arrays.verdict_code.tolist()[3] == VERDICT_TIE
    assert arrays.prompts == ("q1", "q2")
    assert arrays.prompt_idx.tolist() == [1, 0, 0, 1]
    assert arrays.judges == ("j", "k")
    assert arrays.source_idx.tolist() == [0, 1, 3, 4]
    assert arrays.wins.tolist() == [0, 0, 2]
    assert arrays.losses.tolist() == [1, 1, 0]
    assert arrays.ties.tolist() == [2, 1, 1]
    counts = battle_counts(arrays)
    assert counts.tolist() == [[0, 1, 2], [1, 0, 1], [2, 1, 0]]


def test_empty_input_is_an_error() -> None:
    with pytest.raises(InputError, match="no battles"):
        battle_arrays([])


def test_only_invalid_verdicts_cannot_be_rated() -> None:
    arrays = battle_arrays([Battle("a", "b", Verdict.INVALID, prompt_id="q")])
    assert arrays.invalid == 1 and arrays.n_battles == 0
    with pytest.raises(InputError, match="INVALID"):
        check_ratable(arrays)


def test_model_with_only_invalid_verdicts_is_named() -> None:
    arrays = battle_arrays(
        [Battle("a", "b", Verdict.A, prompt_id="q"), Battle("a", "c", Verdict.INVALID, prompt_id="q")]
    )
    with pytest.raises(InputError, match=r"\bc\b.*no valid battle"):
        check_ratable(arrays)


def test_disconnected_groups_are_named() -> None:
    arrays = battle_arrays(
        [
            Battle("a", "b", Verdict.A, prompt_id="q"),
            Battle("c", "d", Verdict.A, prompt_id="q"),
            Battle("d", "e", Verdict.B, prompt_id="q"),
        ]
    )
    with pytest.raises(InputError, match=r"2 groups.*\{a, b\}; \{c, d, e\}"):
        check_ratable(arrays)


def test_connected_chain_is_ratable() -> None:
    arrays = battle_arrays(
        [Battle(x, y, Verdict.A, prompt_id="q") for x, y in [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e")]]
    )
    check_ratable(arrays)
    assert np.array_equal(battle_counts(arrays).sum(axis=1), [1, 2, 2, 2, 1])

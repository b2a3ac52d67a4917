from __future__ import annotations

import json

import numpy as np
import pytest

from qlora_eval.errors import ConfigError, ConvergenceError, InputError
from qlora_eval.rating import RatingMethod, TieModel, interval_ranks, rank_battles
from qlora_eval.types import Battle, Verdict
from tests.rating.helpers import synthetic_battles

STRENGTHS = {"alpha": 1200.0, "beta": 1100.0, "gamma": 1000.0, "delta": 700.0}
MODEL_KEYS = {"model", "rating", "se", "ci_low", "ci_high", "rank", "wins", "losses", "ties"}


@pytest.fixture(scope="module")
def battles() -> list[Battle]:
    return synthetic_battles(np.random.default_rng(0), STRENGTHS, 12, judges=("j1", "j2"))


@pytest.mark.parametrize("method", list(RatingMethod))
def test_rank_battles_json_document(battles: list[Battle], method: RatingMethod) -> None:
    rounds = 200
    result = rank_battles(battles, method, rounds, np.random.default_rng(1))
    doc = json.loads(json.dumps(result.to_json_dict(), allow_nan=False))
    assert doc["method"] == method.value
    assert doc["rounds"] == rounds
    assert doc["battles"] == len(battles)
    assert doc["invalid"] == 0
    assert [m["model"] for m in doc["models"]] == ["alpha", "beta", "gamma", "delta"]
    for row in doc["models"]:
        assert set(row) == MODEL_KEYS
        assert row["ci_low"] <= row["rating"] <= row["ci_high"]
        assert row["wins"] + row["losses"] + row["ties"] == 12 * 3 * 2 * 2
    ratings = [m["rating"] for m in doc["models"]]
    assert ratings == sorted(ratings, reverse=True)
    assert np.mean(ratings) == pytest.approx(1000.0, abs=1e-6)
    assert doc["models"][0]["rank"] == 1 and doc["models"][-1]["rank"] == 4  # delta is far behind
    assert set(doc["bias"]["by_judge"]) == {"j1", "j2"}
    assert doc["win_rates"]["models"] == sorted(STRENGTHS)
    assert doc["win_rates"]["observed"][0][0] is None
    assert result.samples.shape == (rounds, 4)
    assert result.rating_of("delta").rating == ratings[-1]
    assert set(doc["rank_ranges"]) == set(STRENGTHS)


def test_elo_and_bt_agree_on_the_order(battles: list[Battle]) -> None:
    elo = rank_battles(battles, RatingMethod.ELO, 100, np.random.default_rng(2))
    bt = rank_battles(battles, RatingMethod.BT, 100, np.random.default_rng(2))
    assert [r.model for r in elo.ratings] == [r.model for r in bt.ratings]


@pytest.mark.parametrize("method", list(RatingMethod))
def test_invalid_verdicts_are_counted_not_rated(battles: list[Battle], method: RatingMethod) -> None:
    extra = [Battle("alpha", "delta", Verdict.INVALID, "p0", "j1"), Battle("beta", "alpha", Verdict.INVALID, "p3")]
    clean = rank_battles(battles, method, 50, np.random.default_rng(3))
    dirty = rank_battles(battles + extra, method, 50, np.random.default_rng(3))
    assert dirty.invalid == 2 and clean.invalid == 0
    assert dirty.battles == clean.battles
    assert dirty.invalid_per_model == {"alpha": 2, "beta": 1, "delta": 1, "gamma": 0}
    np.testing.assert_allclose(dirty.samples, clean.samples)
    assert [r.to_dict() for r in dirty.ratings] == [r.to_dict() for r in clean.ratings]


def test_bt_options(battles: list[Battle]) -> None:
    anchored = rank_battles(battles, RatingMethod.BT, 50, np.random.default_rng(4), anchor="gamma")
    gamma = anchored.rating_of("gamma")
    # Issue 13: the anchor's interval is its uncertainty relative to the others, never zero-width by construction.
    assert gamma.rating == pytest.approx(1000.0) and gamma.ci_low < 1000.0 < gamma.ci_high
    assert anchored.parameters["anchored"] == "model"
    davidson = rank_battles(battles, RatingMethod.BT, 50, np.random.default_rng(4), tie_model=TieModel.DAVIDSON)
    assert davidson.parameters["tie_nu"] > 0
    with pytest.raises(InputError, match="no battle"):
        rank_battles(battles, RatingMethod.BT, 50, np.random.default_rng(4), anchor="omega")


def test_bad_configuration(battles: list[Battle]) -> None:
    rng = np.random.default_rng(5)
    with pytest.raises(ConfigError, match="at least 2"):
        rank_battles(battles, RatingMethod.ELO, 1, rng)
    with pytest.raises(ConfigError, match="Bradley-Terry only"):
        rank_battles(battles, RatingMethod.ELO, 10, rng, anchor="alpha")
    with pytest.raises(ConfigError, match="aligned"):
        rank_battles(battles, RatingMethod.ELO, 10, rng, answer_lengths=([1.0], [2.0]))


def test_answer_lengths_feed_the_length_statistic() -> None:
    battles = [
        Battle("a", "b", Verdict.A, "q"),
        Battle("b", "a", Verdict.INVALID, "q"),
        Battle("b", "a", Verdict.A, "r"),
    ]
    result = rank_battles(
        battles, RatingMethod.ELO, 10, np.random.default_rng(0), answer_lengths=([9, 1, 1], [3, 1, 5])
    )
    assert result.length is not None
    assert (result.length.decisive, result.length.longer_wins) == (2, 1)


def test_undefeated_model_with_bt_is_a_convergence_error() -> None:
    battles = [Battle("a", "b", Verdict.A, "q"), Battle("b", "a", Verdict.B, "r"), Battle("b", "c", Verdict.TIE, "q")]
    with pytest.raises(ConvergenceError, match=r"\{a\} never lost"):
        rank_battles(battles, RatingMethod.BT, 10, np.random.default_rng(0))
    # Elo has no such problem.
    assert rank_battles(battles, RatingMethod.ELO, 10, np.random.default_rng(0)).ratings[0].model == "a"


def test_interval_ranks() -> None:
    low = np.array([1100.0, 1050.0, 900.0, 800.0])
    high = np.array([1200.0, 1150.0, 1000.0, 1060.0])
    best, worst = interval_ranks(low, high)
    # model 1 overlaps model 0, so both may be first; model 2 is beaten by 0 and 1; model 3 overlaps 1 and 2.
    assert best.tolist() == [1, 1, 3, 2]
    assert worst.tolist() == [2, 3, 4, 4]

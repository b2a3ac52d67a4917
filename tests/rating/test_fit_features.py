"""Golden tests of the fit features on synthetic data with a known answer: position advantage, style control,
Elo bootstrap intervals, honest intervals under anchoring, fit options."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qlora_eval.errors import ConfigError, ConvergenceError
from qlora_eval.rating import RatingMethod, rank_battles
from qlora_eval.rating.battles import battle_arrays
from qlora_eval.rating.elo import fit_elo
from qlora_eval.rating.elo_bootstrap import bootstrap_elo_samples, fit_elo_bootstrap
from qlora_eval.rating.fit_options import EloIntervals, fit_options, fit_options_from_mapping
from qlora_eval.rating.style import StyleControl, StyleFeatures, parse_controls, style_covariates
from qlora_eval.types import Battle, Verdict
from tests.rating.helpers import synthetic_battles

STRENGTHS = {"alpha": 0.0, "beta": 120.0, "gamma": 240.0, "delta": -150.0}
C = math.log(10.0) / 400.0


def _draw(rng: np.random.Generator, x: float, tie_rate: float = 0.0) -> Verdict:
    u = rng.random()
    if u < tie_rate:
        return Verdict.TIE
    return Verdict.A if u < tie_rate + (1 - tie_rate) / (1 + math.exp(-x)) else Verdict.B


def _relative(result: object, names: list[str]) -> dict[str, float]:
    ratings = {r.model: r.rating for r in result.ratings}  # type: ignore[attr-defined]
    mean = np.mean([ratings[n] for n in names])
    return {n: ratings[n] - mean for n in names}


def _true_relative() -> dict[str, float]:
    mean = np.mean(list(STRENGTHS.values()))
    return {n: s - mean for n, s in STRENGTHS.items()}


def test_planted_first_position_advantage_is_recovered() -> None:
    rng = np.random.default_rng(11)
    advantage = 150.0  # Elo points for the answer shown first
    names = sorted(STRENGTHS)
    battles = []
    for p in range(300):
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                for first, second in ((a, b), (b, a)):
                    x = (STRENGTHS[first] - STRENGTHS[second] + advantage) * C
                    battles.append(Battle(first, second, _draw(rng, x), prompt_id=f"p{p}", judge="j"))
    fitted = rank_battles(battles, RatingMethod.BT, 100, np.random.default_rng(1), position_advantage=True)
    assert fitted.adjustments is not None and fitted.adjustments.position is not None
    position = fitted.adjustments.position
    assert position.ci_low < advantage < position.ci_high
    assert position.elo == pytest.approx(advantage, abs=25)
    assert position.ci_high - position.ci_low > 1.0  # an interval, not a point
    # The ratings are free of it: their differences are the planted ones.
    truth = _true_relative()
    for name, value in _relative(fitted, names).items():
        assert value == pytest.approx(truth[name], abs=25)
    # Without the parameter, the mixture of the two shifted curves flattens every difference.
    plain = rank_battles(battles, RatingMethod.BT, 20, np.random.default_rng(1))
    spread = max(_relative(plain, names).values()) - min(_relative(plain, names).values())
    assert spread < 0.93 * (max(truth.values()) - min(truth.values()))
    doc = fitted.to_json_dict()
    assert doc["adjustments"]["position_advantage"]["elo"] == pytest.approx(position.elo)
    assert doc["parameters"]["position_bias"] is True


def test_position_parameter_corrects_one_sided_orders() -> None:
    """Each pair judged in one order only (imports): the advantage leaks into the ratings unless it is fitted."""
    rng = np.random.default_rng(12)
    advantage = 200.0
    battles = []
    strengths = {"a": 0.0, "b": 0.0, "c": 0.0}
    for p in range(400):
        for first, second in (("a", "b"), ("b", "c"), ("a", "c"), ("b", "a")):
            x = (strengths[first] - strengths[second] + advantage) * C
            battles.append(Battle(first, second, _draw(rng, x), prompt_id=f"p{p}", judge="j"))
    plain = rank_battles(battles, RatingMethod.BT, 20, np.random.default_rng(2))
    fitted = rank_battles(battles, RatingMethod.BT, 50, np.random.default_rng(2), position_advantage=True)
    assert plain.rating_of("a").rating - plain.rating_of("c").rating > 100  # a is shown first more often
    for name in "abc":
        assert fitted.rating_of(name).rating == pytest.approx(1000.0, abs=30)


def _style_battles(
    rng: np.random.Generator, theta_elo: float
) -> tuple[list[Battle], list[list[float]], tuple[str, ...]]:
    """``delta`` writes long answers; the judge prefers length by ``theta_elo`` per unit of normalised difference."""
    names = sorted(STRENGTHS)
    lengths = {"alpha": 300, "beta": 320, "gamma": 280, "delta": 1200}
    battles: list[Battle] = []
    texts_a: list[str] = []
    texts_b: list[str] = []
    for p in range(250):
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                for first, second in ((a, b), (b, a)):
                    la = int(lengths[first] * rng.uniform(0.5, 1.5))
                    lb = int(lengths[second] * rng.uniform(0.5, 1.5))
                    d = (la - lb) / (la + lb)
                    x = (STRENGTHS[first] - STRENGTHS[second] + theta_elo * d) * C
                    battles.append(Battle(first, second, _draw(rng, x), prompt_id=f"p{p}", judge="j"))
                    texts_a.append("w" * la)
                    texts_b.append("w" * lb)
    z, style_names = style_covariates(texts_a, texts_b, (StyleControl.LENGTH,))
    return battles, z.tolist(), style_names


def test_planted_length_preference_is_recovered_and_removed() -> None:
    theta = 400.0
    battles, z, style_names = _style_battles(np.random.default_rng(13), theta)
    result = rank_battles(battles, RatingMethod.BT, 100, np.random.default_rng(3), style=(z, style_names))
    assert result.adjustments is not None
    (length,) = result.adjustments.style
    assert length.name == "length"
    assert length.ci_low < theta < length.ci_high and length.elo == pytest.approx(theta, abs=60)
    truth = _true_relative()
    raw = _relative(result, sorted(STRENGTHS))
    controlled = {r.model: r.rating for r in result.adjustments.controlled}
    mean = np.mean(list(controlled.values()))
    # The raw ratings reward delta's long answers; the controlled ones give back the planted strengths.
    assert raw["delta"] - truth["delta"] > 60
    for name in STRENGTHS:
        assert controlled[name] - mean == pytest.approx(truth[name], abs=25)
    doc = result.to_json_dict()["adjustments"]["style"]
    assert [c["name"] for c in doc["coefficients"]] == ["length"] and len(doc["models"]) == 4


def test_style_features_and_control_names() -> None:
    text = "# Title\n\nSome **bold** and __more__.\n\n- one\n- two\n1. three\n"
    features = StyleFeatures.of(text)
    assert (features.headers, features.list_items, features.bold) == (1, 3, 2)
    z, names = style_covariates([text, "plain"], ["plain", text], parse_controls("markdown,length"))
    assert names == ("length", "markdown_headers", "markdown_list_items", "markdown_bold")
    np.testing.assert_allclose(z[0], -z[1])
    assert z[0, 1] == 1.0 and z[0, 0] == pytest.approx((len(text) - 5) / (len(text) + 5))
    with pytest.raises(ConfigError, match="--control"):
        parse_controls("length,colour")


def test_elo_bootstrap_point_is_the_orderings_mean_and_intervals_resample_prompts() -> None:
    battles = synthetic_battles(np.random.default_rng(5), STRENGTHS, 30)
    arrays = battle_arrays(battles)
    args = (arrays.a_idx, arrays.b_idx, arrays.score_a)
    boot = fit_elo_bootstrap(*args, arrays.prompt_idx, arrays.n_models, 400, np.random.default_rng(7), threads=1)
    plain = fit_elo(*args, arrays.n_models, 400, np.random.default_rng(7), threads=1)
    np.testing.assert_allclose(boot.mean, plain.mean)  # the same orderings drawn first: the paper's estimate
    assert boot.samples.shape == (400, 4) and np.all(boot.ci_low < boot.mean) and np.all(boot.mean < boot.ci_high)
    again = fit_elo_bootstrap(*args, arrays.prompt_idx, arrays.n_models, 400, np.random.default_rng(7), threads=3)
    np.testing.assert_array_equal(again.samples, boot.samples)  # thread count does not matter


def test_elo_bootstrap_rounds_resample_whole_prompts() -> None:
    # One prompt where alpha always wins, one where beta always wins: a round drawing the first prompt twice
    # replays alpha's wins only, so some rounds end with alpha far ahead and some with beta.
    battles = [Battle("alpha", "beta", Verdict.A, "p1", "j"), Battle("beta", "alpha", Verdict.B, "p1", "j")] * 5
    battles += [Battle("alpha", "beta", Verdict.B, "p2", "j"), Battle("beta", "alpha", Verdict.A, "p2", "j")] * 5
    arrays = battle_arrays(battles)
    keys = np.random.default_rng(0).integers(0, 2**63, size=200, dtype=np.uint64)
    samples = bootstrap_elo_samples(arrays.a_idx, arrays.b_idx, arrays.score_a, arrays.prompt_idx, 2, keys)
    diff = samples[:, 0] - samples[:, 1]
    assert (diff > 100).any() and (diff < -100).any() and (np.abs(diff) < 60).any()
    np.testing.assert_allclose(samples.sum(axis=1), 2000.0)  # Elo conserves the total


def test_elo_intervals_option_and_bt_only_flags() -> None:
    battles = synthetic_battles(np.random.default_rng(6), STRENGTHS, 20)
    rng = np.random.default_rng(1)
    result = rank_battles(battles, RatingMethod.ELO, 200, rng, elo_intervals=EloIntervals.BOOTSTRAP)
    assert result.parameters["intervals"] == "bootstrap"
    with pytest.raises(ConfigError, match="--position-bias"):
        rank_battles(battles, RatingMethod.ELO, 50, np.random.default_rng(1), position_advantage=True)


def test_anchored_model_keeps_an_honest_interval() -> None:
    battles = synthetic_battles(np.random.default_rng(8), STRENGTHS, 40)
    free = rank_battles(battles, RatingMethod.BT, 200, np.random.default_rng(4))
    anchored = rank_battles(battles, RatingMethod.BT, 200, np.random.default_rng(4), anchor="gamma", base=1500.0)
    gamma = anchored.rating_of("gamma")
    assert gamma.rating == pytest.approx(1500.0)
    assert gamma.ci_low < 1500.0 < gamma.ci_high and gamma.ci_high - gamma.ci_low > 5
    for row in free.ratings:  # a translation of the free fit, interval widths unchanged
        moved = anchored.rating_of(row.model)
        shift = 1500.0 - free.rating_of("gamma").rating
        assert moved.rating == pytest.approx(row.rating + shift)
        assert moved.ci_high - moved.ci_low == pytest.approx(row.ci_high - row.ci_low)
    with_position = rank_battles(
        battles, RatingMethod.BT, 50, np.random.default_rng(4), anchor="gamma", position_advantage=True
    )
    assert with_position.rating_of("gamma").rating == pytest.approx(1000.0)
    assert with_position.rating_of("gamma").ci_high > with_position.rating_of("gamma").ci_low


def test_unbounded_fit_names_the_prior_flag_and_prior_fixes_it() -> None:
    battles = [Battle("alpha", "beta", Verdict.A, f"p{i}", "j") for i in range(5)]
    battles += [Battle("beta", "alpha", Verdict.B, f"p{i}", "j") for i in range(5)]
    with pytest.raises(ConvergenceError, match="--prior 1"):
        rank_battles(battles, RatingMethod.BT, 20, np.random.default_rng(1), position_advantage=True)
    shrunk = rank_battles(battles, RatingMethod.BT, 20, np.random.default_rng(1), position_advantage=True, prior=2)
    assert shrunk.rating_of("alpha").rating > shrunk.rating_of("beta").rating


def test_davidson_with_position() -> None:
    battles = synthetic_battles(np.random.default_rng(9), STRENGTHS, 40, tie_rate=0.3)
    from qlora_eval.rating.bradley_terry import TieModel

    plain = rank_battles(battles, RatingMethod.BT, 20, np.random.default_rng(1), tie_model=TieModel.DAVIDSON)
    fitted = rank_battles(
        battles, RatingMethod.BT, 20, np.random.default_rng(1), tie_model=TieModel.DAVIDSON, position_advantage=True
    )
    assert fitted.parameters["tie_nu"] == pytest.approx(plain.parameters["tie_nu"], rel=0.05)
    for row in plain.ratings:
        assert fitted.rating_of(row.model).rating == pytest.approx(row.rating, abs=10)


def test_fit_options_parse_and_name_their_flags() -> None:
    options = fit_options(ties="davidson", prior=2, anchor="m=1200", position_bias="on", control="length")
    assert options.anchor == ("m", 1200.0) and options.position_bias and options.controls == (StyleControl.LENGTH,)
    assert options.to_json("bt")["position_bias"] == "on"
    assert fit_options().elo_intervals is EloIntervals.BOOTSTRAP
    for kwargs, flag in (
        ({"ties": "thirds"}, "--ties"),
        ({"prior": -1}, "--prior"),
        ({"anchor": "m"}, "--anchor"),
        ({"position_bias": "maybe"}, "--position-bias"),
        ({"elo_intervals": "both"}, "--elo-intervals"),
    ):
        with pytest.raises(ConfigError, match=flag):
            fit_options(**kwargs)  # type: ignore[arg-type]
    yaml_options = fit_options_from_mapping({"position-bias": True, "control": ["length", "markdown"]}, "t.yaml rating")
    assert yaml_options.position_bias and len(yaml_options.controls) == 2
    with pytest.raises(ConfigError, match=r"t\.yaml rating: unknown key"):
        fit_options_from_mapping({"colour": 1}, "t.yaml rating")


@pytest.mark.parametrize("tie_model_name", ["half", "davidson"])
@pytest.mark.parametrize("prior", [0.0, 1.5])
def test_feature_fit_without_covariates_is_the_plain_fit(tie_model_name: str, prior: float) -> None:
    """No covariates: the per-unit fit solves the count-table problem of bradley_terry (an independent code path)."""
    from qlora_eval.rating.bradley_terry import TieModel, count_tables, fit_bradley_terry
    from qlora_eval.rating.bt_features import fit_bt_features

    tie_model = TieModel.HALF_WIN if tie_model_name == "half" else TieModel.DAVIDSON
    arrays = battle_arrays(synthetic_battles(np.random.default_rng(21), STRENGTHS, 15, tie_rate=0.2))
    args = (arrays.a_idx, arrays.b_idx, arrays.score_a)
    features = fit_bt_features(
        *args, arrays.prompt_idx, np.zeros((arrays.n_battles, 0)), (), 4, 3, np.random.default_rng(0),
        tie_model=tie_model, prior=prior,
    )  # fmt: skip
    wins, ties = count_tables(*args, 4)
    plain = fit_bradley_terry(wins, ties, tie_model=tie_model, prior=prior)
    np.testing.assert_allclose(features.beta, plain.beta, atol=1e-7)
    if tie_model is TieModel.DAVIDSON:
        assert features.tie_nu == pytest.approx(plain.tie_nu, rel=1e-6)

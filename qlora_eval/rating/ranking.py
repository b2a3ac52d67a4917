"""One call from battles to a ranking: :func:`rank_battles` and its :class:`RankingResult`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

from qlora_eval.errors import ConfigError
from qlora_eval.rating.battles import BattleArrays, battle_arrays, check_ratable
from qlora_eval.rating.bias import (
    LengthPreference,
    PositionBias,
    length_preference,
    position_bias,
    position_bias_by_judge,
)
from qlora_eval.rating.bradley_terry import TieModel
from qlora_eval.rating.bt_bootstrap import bootstrap_bradley_terry
from qlora_eval.rating.elo import DEFAULT_INITIAL, DEFAULT_K, DEFAULT_SCALE, fit_elo
from qlora_eval.rating.fit_options import EloIntervals
from qlora_eval.rating.winrates import WinRates, win_rates
from qlora_eval.types import Battle, Rating

if TYPE_CHECKING:
    from qlora_eval.rating.adjusted import Adjustments


class RatingMethod(Enum):
    """Which rating algorithm :func:`rank_battles` runs."""

    ELO = "elo"
    BT = "bt"


DEFAULT_ROUNDS: dict[RatingMethod, int] = {RatingMethod.ELO: 10_000, RatingMethod.BT: 1_000}
"""Orderings for Elo (as in the QLoRA paper), bootstrap rounds for Bradley-Terry."""


def interval_ranks(ci_low: np.ndarray, ci_high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank intervals from rating intervals.

    A model is *significantly better* than another when its interval lies entirely above the other's
    (``ci_low`` of one > ``ci_high`` of the other). The best rank a model can claim is 1 + the number of
    models significantly better; the worst is ``m`` - the number of models significantly worse. The
    reported rank is the best one, so models whose intervals overlap share a rank.

    Args:
        ci_low: shape ``(m,)``.
        ci_high: shape ``(m,)``.

    Returns:
        ``(best, worst)``, each of shape ``(m,)`` int64.
    """
    low = np.asarray(ci_low, dtype=np.float64)
    high = np.asarray(ci_high, dtype=np.float64)
    better = low[None, :] > high[:, None]  # better[i, j]: j is significantly better than i
    best = 1 + better.sum(axis=1)
    worst = low.shape[0] - better.sum(axis=0)
    return best.astype(np.int64), worst.astype(np.int64)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _matrix_json(matrix: np.ndarray) -> list[list[float | None]]:
    return [[_finite_or_none(float(v)) for v in row] for row in matrix]


@dataclass(frozen=True, eq=False)
class RankingResult:
    """A ranking with its intervals, distributions and diagnostics.

    Attributes:
        method: the algorithm.
        rounds: Elo orderings or Bradley-Terry bootstrap rounds.
        battles: valid (rated) battles.
        invalid: INVALID verdicts (counted, never rated).
        models: all models sorted by name: the column order of ``samples`` and the win-rate matrices.
        ratings: one :class:`Rating` per model, best first. Elo: ``rating`` is the mean over orderings,
            ``se`` the standard error of that mean, ``ci_low``/``ci_high`` the 2.5/97.5 percentiles over
            orderings. BT: ``rating`` is the maximum-likelihood estimate, ``se`` the bootstrap standard
            deviation, the interval the 2.5/97.5 bootstrap percentiles. ``rank`` follows :func:`interval_ranks`.
        rank_ranges: model -> (best rank, worst rank) from :func:`interval_ranks`.
        samples: shape ``(rounds, m)``, ratings of every ordering (Elo) or bootstrap round (BT).
        win_rates: counts, observed and predicted win-rate matrices.
        bias: position bias over all judges.
        bias_by_judge: position bias per judge id.
        length: preference for longer answers, when answer lengths were given.
        invalid_per_model: model -> INVALID verdicts it took part in.
        parameters: the method's settings (Elo: k, scale, initial, intervals; BT: tie_model, prior, anchor,
            scale, base, position_bias, control and the fitted tie_nu).
        adjustments: BT with ``position_bias`` or style covariates: the first-position advantage, the style
            coefficients and the style-controlled ratings (see :mod:`.adjusted`); None otherwise.
    """

    method: RatingMethod
    rounds: int
    battles: int
    invalid: int
    models: tuple[str, ...]
    ratings: tuple[Rating, ...]
    rank_ranges: dict[str, tuple[int, int]]
    samples: np.ndarray
    win_rates: WinRates
    bias: PositionBias
    bias_by_judge: dict[str, PositionBias]
    length: LengthPreference | None
    invalid_per_model: dict[str, int]
    parameters: dict[str, Any]
    adjustments: Adjustments | None = None

    def rating_of(self, model: str) -> Rating:
        """The :class:`Rating` of ``model``.

        Raises:
            KeyError: when the model is not in the ranking.
        """
        for rating in self.ratings:
            if rating.model == model:
                return rating
        raise KeyError(model)

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON document of ``qlora-eval rank --json`` (the CLI adds ``"seed"``).

        Keys: ``method``, ``rounds``, ``battles``, ``invalid``, ``models`` (list of
        ``{"model", "rating", "se", "ci_low", "ci_high", "rank", "wins", "losses", "ties"}``, best first),
        ``bias`` (overall fields plus ``by_judge``), ``length_preference`` (or null), ``invalid_per_model``,
        ``rank_ranges`` (model -> [best, worst]), ``win_rates`` (``models``, ``counts``, ``observed``,
        ``predicted``; null where undefined) and ``parameters``; ``adjustments`` only when fitted.
        """
        bias = self.bias.to_dict()
        bias["by_judge"] = {judge: b.to_dict() for judge, b in self.bias_by_judge.items()}
        return {
            "method": self.method.value,
            "rounds": self.rounds,
            "battles": self.battles,
            "invalid": self.invalid,
            "models": [r.to_dict() for r in self.ratings],
            "bias": bias,
            "length_preference": self.length.to_dict() if self.length is not None else None,
            "invalid_per_model": dict(self.invalid_per_model),
            "rank_ranges": {model: [best, worst] for model, (best, worst) in self.rank_ranges.items()},
            "win_rates": {
                "models": list(self.win_rates.models),
                "counts": self.win_rates.counts.tolist(),
                "observed": _matrix_json(self.win_rates.observed),
                "predicted": _matrix_json(self.win_rates.predicted),
            },
            "parameters": dict(self.parameters),
        } | ({"adjustments": self.adjustments.to_dict()} if self.adjustments is not None else {})


def rank_battles(
    battles: Sequence[Battle] | BattleArrays,
    method: RatingMethod,
    rounds: int,
    rng: np.random.Generator,
    *,
    tie_model: TieModel = TieModel.HALF_WIN,
    prior: float = 0.0,
    anchor: str | None = None,
    answer_lengths: tuple[Sequence[float], Sequence[float]] | None = None,
    k: float = DEFAULT_K,
    scale: float = DEFAULT_SCALE,
    base: float = DEFAULT_INITIAL,
    elo_intervals: EloIntervals = EloIntervals.ORDERINGS,
    position_advantage: bool = False,
    style: tuple[Sequence[Sequence[float]], Sequence[str]] | None = None,
) -> RankingResult:
    """Rate and rank models from pairwise battles.

    Args:
        battles: the battles (INVALID verdicts included: they are counted, not rated), or their
            :class:`~qlora_eval.rating.battles.BattleArrays` (see
            :func:`~qlora_eval.rating.battles.battle_arrays_from_columns`, the way for large inputs).
        method: ``RatingMethod.ELO`` or ``RatingMethod.BT``.
        rounds: Elo orderings or BT bootstrap rounds (see ``DEFAULT_ROUNDS``); at least 2.
        rng: the source of randomness (orderings or bootstrap draws).
        tie_model: BT only: ``HALF_WIN`` or ``DAVIDSON``.
        prior: BT only: virtual games per pair of models (0 = plain maximum likelihood).
        anchor: BT only: model whose rating is ``base``; None puts the mean rating at ``base``. The bootstrap
            samples stay centred on the models' mean and move by the same constant, so the anchor's interval
            is its uncertainty relative to the others (never zero-width by construction).
        answer_lengths: optional ``(length_a, length_b)``, each aligned with ``battles``, for the
            length-preference statistic.
        k: Elo only: the K factor.
        scale: the Elo scale of both methods (400).
        base: Elo's starting rating / BT's anchor value (1000).
        elo_intervals: Elo only: ``ORDERINGS`` (percentiles over orderings of the full data) or ``BOOTSTRAP``
            (prompts resampled with replacement; see :mod:`.elo_bootstrap`); the rating is the mean over
            orderings either way.
        position_advantage: BT only: fit a first-position advantage; ratings are then free of it.
        style: BT only: ``(covariates, names)``, covariates of shape ``(len(battles), c)`` aligned with
            ``battles`` (see :func:`~qlora_eval.rating.style.style_covariates`); controlled ratings and the
            coefficients go to ``adjustments``.

    Returns:
        The :class:`RankingResult`.

    Raises:
        InputError: no battles, nothing valid, a model with only INVALID verdicts, disconnected models.
        ConfigError: bad rounds, BT-only options given with Elo, an unknown anchor, misaligned lengths.
        ConvergenceError: BT without a finite estimate (see :mod:`qlora_eval.rating.bradley_terry`).
    """
    if not isinstance(method, RatingMethod):
        raise ConfigError(f"method must be a RatingMethod (elo or bt), got {method!r}")
    if rounds < 2:
        raise ConfigError(f"rounds must be at least 2 to give an interval, got {rounds}")
    bt_only = (tie_model is not TieModel.HALF_WIN, prior != 0.0, anchor is not None, position_advantage, style)
    if method is RatingMethod.ELO and any(v is not None and v is not False for v in bt_only):
        raise ConfigError(
            "--ties, --prior, --anchor, --position-bias and --control apply to Bradley-Terry only; "
            "drop them or use --method bt"
        )
    # The adjusted fits (scipy's sparse matrices among their imports) load only when a ranking runs.
    from qlora_eval.rating.adjusted import adjusted_bt, anchor_shift

    arrays = battles if isinstance(battles, BattleArrays) else battle_arrays(battles)
    n_input = arrays.n_battles + arrays.invalid  # what answer_lengths and style are aligned with
    check_ratable(arrays)
    m = arrays.n_models
    tie_nu: float | None = None
    adjustments: Adjustments | None = None
    parameters: dict[str, Any]
    if method is RatingMethod.ELO:
        if elo_intervals is EloIntervals.BOOTSTRAP:
            from qlora_eval.rating.elo_bootstrap import fit_elo_bootstrap

            a, b, s, g = arrays.a_idx, arrays.b_idx, arrays.score_a, arrays.prompt_idx
            elo = fit_elo_bootstrap(a, b, s, g, m, rounds, rng, k=k, scale=scale, initial=base)
        else:
            elo = fit_elo(arrays.a_idx, arrays.b_idx, arrays.score_a, m, rounds, rng, k=k, scale=scale, initial=base)
        point, se, low, high, samples = elo.mean, elo.se, elo.ci_low, elo.ci_high, elo.samples
        parameters = {"k": k, "scale": scale, "initial": base, "intervals": elo_intervals.value}
    elif position_advantage or style is not None:
        anchor_index = arrays.model_index(anchor) if anchor is not None else None
        covariates = None
        if style is not None:
            z = np.asarray(style[0], dtype=np.float64).reshape(n_input, -1)
            covariates = (z[arrays.source_idx], tuple(style[1]))
        fitted = adjusted_bt(
            arrays,
            rounds,
            rng,
            tie_model=tie_model,
            prior=prior,
            position_bias=position_advantage,
            style=covariates,
            scale=scale,
            base=base,
            anchor=anchor_index,
        )
        point, samples, tie_nu, adjustments = fitted.point, fitted.samples, fitted.tie_nu, fitted.adjustments
        se = samples.std(axis=0, ddof=1)
        low, high = np.percentile(samples, [2.5, 97.5], axis=0)
        parameters = _bt_parameters(tie_model, prior, anchor, scale, base, tie_nu, position_advantage, covariates)
    else:
        anchor_index = arrays.model_index(anchor) if anchor is not None else None
        # Fitted mean-centred, then shifted (see anchor_shift): the anchor keeps an honest, non-zero interval.
        bt = bootstrap_bradley_terry(
            arrays.a_idx,
            arrays.b_idx,
            arrays.score_a,
            arrays.prompt_idx,
            m,
            rounds,
            rng,
            tie_model=tie_model,
            prior=prior,
            anchor=None,
            scale=scale,
            base=base,
            models=arrays.models,
        )
        point, samples = anchor_shift(bt.point.ratings, bt.samples, anchor_index, base)
        se = bt.se
        low, high = np.percentile(samples, [2.5, 97.5], axis=0)
        tie_nu = bt.point.tie_nu
        parameters = _bt_parameters(tie_model, prior, anchor, scale, base, tie_nu, False, None)
    best, worst = interval_ranks(low, high)
    order = sorted(range(m), key=lambda i: (-point[i], arrays.models[i]))
    ratings = tuple(
        Rating(
            model=arrays.models[i],
            rating=float(point[i]),
            se=float(se[i]),
            ci_low=float(low[i]),
            ci_high=float(high[i]),
            rank=int(best[i]),
            wins=int(arrays.wins[i]),
            losses=int(arrays.losses[i]),
            ties=int(arrays.ties[i]),
        )
        for i in order
    )
    return RankingResult(
        method=method,
        rounds=rounds,
        battles=arrays.n_battles,
        invalid=arrays.invalid,
        models=arrays.models,
        ratings=ratings,
        rank_ranges={arrays.models[i]: (int(best[i]), int(worst[i])) for i in order},
        samples=samples,
        win_rates=win_rates(arrays, point, scale=scale, tie_nu=tie_nu),
        bias=position_bias(arrays),
        bias_by_judge=position_bias_by_judge(arrays),
        length=_length_stats(arrays, answer_lengths, n_input),
        invalid_per_model={name: int(arrays.invalid_per_model[i]) for i, name in enumerate(arrays.models)},
        parameters=parameters,
        adjustments=adjustments,
    )


def _bt_parameters(
    tie_model: TieModel,
    prior: float,
    anchor: str | None,
    scale: float,
    base: float,
    tie_nu: float | None,
    position: bool,
    style: tuple[np.ndarray, tuple[str, ...]] | None,
) -> dict[str, Any]:
    return {
        "tie_model": tie_model.value,
        "prior": prior,
        "anchor": anchor,
        # "model": the anchor's point rating is ``base``; intervals stay relative to the models' mean.
        "anchored": "model" if anchor is not None else "mean",
        "scale": scale,
        "base": base,
        "tie_nu": tie_nu,
        "position_bias": position,
        "style_covariates": list(style[1]) if style is not None else [],
    }


def _length_stats(
    arrays: BattleArrays, answer_lengths: tuple[Sequence[float], Sequence[float]] | None, n_input: int
) -> LengthPreference | None:
    if answer_lengths is None:
        return None
    length_a = np.asarray(answer_lengths[0], dtype=np.float64)
    length_b = np.asarray(answer_lengths[1], dtype=np.float64)
    if length_a.shape != (n_input,) or length_b.shape != (n_input,):
        raise ConfigError(
            f"answer_lengths must be two sequences aligned with the {n_input} battles, "
            f"got lengths {length_a.shape} and {length_b.shape}"
        )
    return length_preference(length_a[arrays.source_idx], length_b[arrays.source_idx], arrays.verdict_code)

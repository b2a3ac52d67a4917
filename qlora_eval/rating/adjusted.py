"""Position- and style-adjusted Bradley-Terry for :func:`~qlora_eval.rating.ranking.rank_battles`.

:func:`adjusted_bt` runs :func:`~qlora_eval.rating.bt_features.fit_bt_features` once for the reported
ratings (with the position covariate when asked) and, with style controls, once more with the style
covariates too: those are the *controlled* ratings, reported beside the raw ones with each coefficient
and its interval (:class:`Adjustments`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qlora_eval.rating.battles import BattleArrays
from qlora_eval.rating.bradley_terry import TieModel
from qlora_eval.rating.bt_features import FeatureFit, fit_bt_features

POSITION = "position"


@dataclass(frozen=True)
class Coefficient:
    """A fitted covariate in Elo points: what it adds to the first-shown answer's rating."""

    name: str
    elo: float
    se: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "elo": self.elo, "se": self.se, "ci_low": self.ci_low, "ci_high": self.ci_high}


@dataclass(frozen=True)
class ControlledRow:
    """One model's style-controlled rating."""

    model: str
    rating: float
    se: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "rating": self.rating,
            "se": self.se,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }


@dataclass(frozen=True)
class Adjustments:
    """What the adjusted fits found.

    Attributes:
        position: the first-position advantage of the reported fit (None when not fitted).
        style: the style-controlled fit's coefficients (position included when fitted), None without controls.
        controlled: the style-controlled ratings, best first (empty without controls).
        dropped: style covariates left out because they are 0 in every battle (no answer has the feature, or
            every pair of answers has it equally): the data say nothing about them.
    """

    position: Coefficient | None
    style: tuple[Coefficient, ...] = ()
    controlled: tuple[ControlledRow, ...] = ()
    dropped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"position_advantage", "style": {"coefficients", "models", "dropped"} | null}``."""
        style = {
            "coefficients": [c.to_dict() for c in self.style],
            "models": [r.to_dict() for r in self.controlled],
            "dropped": list(self.dropped),
        }
        return {
            "position_advantage": self.position.to_dict() if self.position is not None else None,
            "style": style if self.style or self.dropped else None,
        }


@dataclass(frozen=True, eq=False)
class AdjustedFit:
    """The reported fit as arrays (shapes ``(m,)`` and ``(R, m)``, mean-centred at ``base``), plus adjustments."""

    point: np.ndarray
    samples: np.ndarray
    tie_nu: float | None
    adjustments: Adjustments


def anchor_shift(
    point: np.ndarray, samples: np.ndarray, anchor: int | None, base: float
) -> tuple[np.ndarray, np.ndarray]:
    """Shift mean-centred ratings so that the anchor's *point* rating is ``base``; samples move by the same constant.

    The bootstrap samples stay centred on the models' mean, so the anchor keeps an honest interval (its
    uncertainty relative to the others) instead of the zero-width ``base - base`` of pinning it in every round.

    Args:
        point: shape ``(m,)``; samples: shape ``(R, m)``; anchor: model index or None (no shift).
    """
    if anchor is None:
        return point, samples
    offset = base - float(point[anchor])
    return point + offset, samples + offset


def _coefficients(fit: FeatureFit, scale: float) -> tuple[Coefficient, ...]:
    point, samples = fit.coefficients_elo(scale)
    low, high = np.percentile(samples, [2.5, 97.5], axis=0) if samples.shape[1] else (point, point)
    se = samples.std(axis=0, ddof=1)
    return tuple(
        Coefficient(name, float(point[i]), float(se[i]), float(low[i]), float(high[i]))
        for i, name in enumerate(fit.names)
    )


def adjusted_bt(
    arrays: BattleArrays,
    rounds: int,
    rng: np.random.Generator,
    *,
    tie_model: TieModel,
    prior: float,
    position_bias: bool,
    style: tuple[np.ndarray, Sequence[str]] | None,
    scale: float,
    base: float,
    anchor: int | None = None,
) -> AdjustedFit:
    """Fit the reported ratings (position-aware when asked) and, with ``style``, the controlled ratings.

    Args:
        arrays: the valid battles.
        rounds: bootstrap rounds.
        rng: the source of randomness (the reported fit draws first, then the controlled one).
        tie_model, prior: as in :func:`~qlora_eval.rating.bt_features.fit_bt_features`.
        position_bias: add the first-position covariate.
        style: ``(covariates, names)``, covariates of shape ``(n, c)`` aligned with the *valid* battles.
        scale, base: the Elo scale and the mean rating.
        anchor: index of the model whose point rating is pinned at ``base`` (see :func:`anchor_shift`).
    """
    n = arrays.n_battles
    position = np.ones((n, 1)) if position_bias else np.zeros((n, 0))
    names = (POSITION,) if position_bias else ()

    def fit(z: np.ndarray, z_names: Sequence[str]) -> FeatureFit:
        return fit_bt_features(
            arrays.a_idx,
            arrays.b_idx,
            arrays.score_a,
            arrays.prompt_idx,
            z,
            z_names,
            arrays.n_models,
            rounds,
            rng,
            tie_model=tie_model,
            prior=prior,
            models=arrays.models,
        )

    raw = fit(position, names)
    point, samples = anchor_shift(*raw.ratings(scale, base), anchor, base)
    position_coefficient = _coefficients(raw, scale)[0] if position_bias else None
    style_coefficients: tuple[Coefficient, ...] = ()
    controlled: tuple[ControlledRow, ...] = ()
    dropped: tuple[str, ...] = ()
    if style is not None:
        covariates, all_names = style
        informative = np.any(covariates != 0.0, axis=0)
        dropped = tuple(name for name, keep in zip(all_names, informative, strict=True) if not keep)
        covariates = covariates[:, informative]
        style_names = [name for name, keep in zip(all_names, informative, strict=True) if keep]
    if style is not None and style_names:
        both = fit(np.concatenate([position, covariates], axis=1), (*names, *style_names))
        style_coefficients = _coefficients(both, scale)
        c_point, c_samples = anchor_shift(*both.ratings(scale, base), anchor, base)
        low, high = np.percentile(c_samples, [2.5, 97.5], axis=0)
        se = c_samples.std(axis=0, ddof=1)
        order = sorted(range(arrays.n_models), key=lambda i: (-c_point[i], arrays.models[i]))
        controlled = tuple(
            ControlledRow(arrays.models[i], float(c_point[i]), float(se[i]), float(low[i]), float(high[i]))
            for i in order
        )
    return AdjustedFit(
        point=point,
        samples=samples,
        tie_nu=raw.tie_nu,
        adjustments=Adjustments(position_coefficient, style_coefficients, controlled, dropped),
    )

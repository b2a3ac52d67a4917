"""The options of a rating fit, in one typed place (CLI flags, tournament YAML and the JSON document share them).

Flags: ``--method elo|bt``, ``--elo-intervals orderings|bootstrap``, ``--ties half|davidson``, ``--prior N``,
``--anchor MODEL=RATING``, ``--position-bias on|off``, ``--control length[,markdown]``.

``--position-bias`` defaults to ``off``. Why: every judging run of this project asks each pair in both
orders, so a first-position advantage adds the same to both models of a pair and mostly cancels; the
position bias is measured and reported by the diagnostics anyway (first-win rate, swap consistency); the
plain fit is the QLoRA paper's model, so ratings stay comparable with earlier rank documents that ``check``
uses as baselines; and the plain fit runs on count tables (fast at Arena scale) while the position-aware
fit runs on per-order units. Turn it on (``--position-bias on``) for data judged mostly in one order
(imports, Arena battles) or to read the judge's advantage in Elo points with its interval: the ratings are
then free of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from qlora_eval.errors import ConfigError
from qlora_eval.rating.bradley_terry import TieModel
from qlora_eval.rating.style import StyleControl, parse_controls


class EloIntervals(Enum):
    """What Elo's interval measures: ``orderings`` (order noise only) or ``bootstrap`` (prompt resampling)."""

    ORDERINGS = "orderings"
    BOOTSTRAP = "bootstrap"


TIES = {"half": TieModel.HALF_WIN, "davidson": TieModel.DAVIDSON}


@dataclass(frozen=True)
class FitOptions:
    """How a ranking is fitted (beyond the method, rounds and seed).

    Attributes:
        elo_intervals: Elo only: interval over orderings or over prompt bootstrap rounds.
        ties: BT only: ``half`` (a tie is half a win each way) or ``davidson`` (a fitted tie parameter).
        prior: BT only: virtual games between every pair (0: plain maximum likelihood).
        anchor: BT only: ``(model, rating)`` to pin that model's rating (None: the models' mean is 1000).
        position_bias: BT only: fit a first-position advantage (see the module docstring for the default).
        controls: BT only: style covariates; controlled ratings are reported beside the raw ones.
    """

    elo_intervals: EloIntervals = EloIntervals.BOOTSTRAP
    ties: str = "half"
    prior: float = 0.0
    anchor: tuple[str, float] | None = None
    position_bias: bool = False
    controls: tuple[StyleControl, ...] = ()

    def __post_init__(self) -> None:
        if self.ties not in TIES:
            raise ConfigError(f"--ties {self.ties!r}: use one of {', '.join(TIES)}")
        if not math.isfinite(self.prior) or self.prior < 0:
            raise ConfigError(f"--prior {self.prior}: virtual games must be a finite number >= 0")

    @property
    def tie_model(self) -> TieModel:
        """The engine's tie model."""
        return TIES[self.ties]

    def bt_only_set(self) -> list[str]:
        """The Bradley-Terry-only flags that differ from their defaults (refused with Elo)."""
        named = [
            ("--ties", self.ties != "half"),
            ("--prior", self.prior != 0.0),
            ("--anchor", self.anchor is not None),
            ("--position-bias", self.position_bias),
            ("--control", bool(self.controls)),
        ]
        return [flag for flag, is_set in named if is_set]

    def to_json(self, method: str) -> dict[str, Any]:
        """The options as recorded in the rank document (``parameters.fit``)."""
        out: dict[str, Any] = {"method": method}
        if method == "elo":
            out["elo_intervals"] = self.elo_intervals.value
        else:
            out |= {
                "ties": self.ties,
                "prior": self.prior,
                "anchor": {"model": self.anchor[0], "rating": self.anchor[1]} if self.anchor else None,
                "position_bias": "on" if self.position_bias else "off",
                "control": [c.value for c in self.controls],
            }
        return out


def parse_anchor(text: str | None) -> tuple[str, float] | None:
    """``MODEL=RATING`` -> ``(model, rating)``; None -> None.

    Raises:
        ConfigError: without ``=`` or with a rating that is not a finite number.
    """
    if text is None:
        return None
    model, sep, value = text.rpartition("=")
    try:
        rating = float(value)
    except ValueError:
        rating = math.nan
    if not sep or not model or not math.isfinite(rating):
        raise ConfigError(f"--anchor {text!r}: expected MODEL=RATING, e.g. --anchor guanaco-65b=1000")
    return model, rating


def parse_on_off(text: str | bool | None, flag: str) -> bool:
    """``on``/``off`` (or a YAML boolean) -> bool; None -> False."""
    if text is None:
        return False
    if isinstance(text, bool):
        return text
    if text in ("on", "off"):
        return text == "on"
    raise ConfigError(f"{flag} {text!r}: use on or off")


def fit_options(
    *,
    elo_intervals: str | None = None,
    ties: str | None = None,
    prior: float | None = None,
    anchor: str | None = None,
    position_bias: str | bool | None = None,
    control: str | Sequence[str] | None = None,
) -> FitOptions:
    """FitOptions from the flag (or YAML) values; None keeps a default.

    Raises:
        ConfigError: a bad value, naming its flag.
    """
    if elo_intervals is not None and elo_intervals not in {e.value for e in EloIntervals}:
        raise ConfigError(f"--elo-intervals {elo_intervals!r}: use orderings or bootstrap")
    return FitOptions(
        elo_intervals=EloIntervals(elo_intervals) if elo_intervals is not None else EloIntervals.BOOTSTRAP,
        ties=ties if ties is not None else "half",
        prior=float(prior) if prior is not None else 0.0,
        anchor=parse_anchor(anchor),
        position_bias=parse_on_off(position_bias, "--position-bias"),
        controls=parse_controls(control),
    )


def fit_options_from_mapping(data: Mapping[str, Any], where: str) -> FitOptions:
    """FitOptions from a tournament YAML ``rating:`` mapping (keys as the flags, ``-`` or ``_``).

    Raises:
        ConfigError: an unknown key or a bad value (``where`` names the file/section).
    """
    keys = {str(k).replace("-", "_"): v for k, v in data.items()}
    allowed = {"elo_intervals", "ties", "prior", "anchor", "position_bias", "control"}
    unknown = sorted(set(keys) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    try:
        return fit_options(**keys)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None

"""The rating engine: pairwise battles in, ratings with honest intervals out (numpy/scipy only, no I/O).

Usage::

    import numpy as np
    from qlora_eval.rating import RatingMethod, rank_battles
    from qlora_eval.types import Battle, Verdict

    battles = [
        Battle("guanaco-65b", "vicuna-13b", Verdict.A, prompt_id="vicuna/1", judge="openai:gpt-4"),
        Battle("vicuna-13b", "guanaco-65b", Verdict.B, prompt_id="vicuna/1", judge="openai:gpt-4"),
        Battle("vicuna-13b", "guanaco-65b", Verdict.TIE, prompt_id="vicuna/2", judge="openai:gpt-4"),
        Battle("guanaco-65b", "vicuna-13b", Verdict.INVALID, prompt_id="vicuna/2", judge="openai:gpt-4"),
    ]
    result = rank_battles(battles, RatingMethod.ELO, rounds=10_000, rng=np.random.default_rng(0))
    for r in result.ratings:  # best first
        print(r.model, round(r.rating), r.ci_low, r.ci_high, r.rank)
    document = result.to_json_dict() | {"seed": 0}  # what `qlora-eval rank --json` writes

``RatingMethod.BT`` fits Bradley-Terry by maximum likelihood and bootstraps over prompts (default
1,000 rounds, ``DEFAULT_ROUNDS``); it raises :class:`~qlora_eval.errors.ConvergenceError` when a model
never lost (pass ``prior=1`` for a shrunk estimate, or use Elo). Building blocks, one module per job:
:mod:`.battles` (arrays and counts), :mod:`.elo` (its compiled replay in :mod:`.elo_kernel`),
:mod:`.bradley_terry` (fits), :mod:`.bt_bootstrap` and :mod:`.bt_tables` (the sparse prompt bootstrap; its
compiled sampler in :mod:`.bt_kernel`), :mod:`.rng_kernel` (per-round generators of the compiled kernels),
:mod:`.winrates`, :mod:`.bias`, :mod:`.ranking`. Fit options (:mod:`.fit_options`): Elo with prompt-bootstrap
intervals (:mod:`.elo_bootstrap`), Bradley-Terry with a first-position advantage and style covariates
(:mod:`.bt_features`, :mod:`.style`, :mod:`.adjusted`).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers; at run time __getattr__ imports each module when first used
    from qlora_eval.rating.adjusted import Adjustments, Coefficient, ControlledRow
    from qlora_eval.rating.battles import BattleArrays, battle_arrays, battle_counts, check_ratable
    from qlora_eval.rating.bias import (
        LengthPreference,
        PositionBias,
        length_preference,
        position_bias,
        position_bias_by_judge,
    )
    from qlora_eval.rating.bradley_terry import (
        BTBootstrap,
        BTFit,
        TieModel,
        bootstrap_prompt_counts,
        count_tables,
        fit_bradley_terry,
        newton_fit_batch,
        prompt_count_tables,
    )
    from qlora_eval.rating.bt_bootstrap import bootstrap_bradley_terry
    from qlora_eval.rating.bt_reference import bootstrap_bradley_terry_dense, bootstrap_reference_loop
    from qlora_eval.rating.elo import (
        EloResult,
        elo_ratings,
        elo_reference_loop,
        fit_elo,
        fit_elo_reference,
        random_orderings,
        summarize_elo,
    )
    from qlora_eval.rating.ranking import DEFAULT_ROUNDS, RankingResult, RatingMethod, interval_ranks, rank_battles
    from qlora_eval.rating.style import StyleControl, parse_controls, style_covariates
    from qlora_eval.rating.winrates import WinRates, observed_win_rates, predicted_win_rates, win_rates

# Imported eagerly (cheap: numpy only), and it must be: the function ``fit_options`` shares its module's name,
# and importing the submodule binds the name on the package, which only this later import rebinds.
from qlora_eval.rating.fit_options import EloIntervals, FitOptions, fit_options, fit_options_from_mapping

# Public name -> module of this package that defines it. Imported lazily: ``qlora-eval rank`` imports the
# package for FitOptions at start-up, and importing every module (scipy/numba users among them) then cost
# about 0.4 s before any work.
_MODULE_OF = {
    "Adjustments": "adjusted",
    "BTBootstrap": "bradley_terry",
    "BTFit": "bradley_terry",
    "BattleArrays": "battles",
    "Coefficient": "adjusted",
    "ControlledRow": "adjusted",
    "DEFAULT_ROUNDS": "ranking",
    "EloResult": "elo",
    "LengthPreference": "bias",
    "PositionBias": "bias",
    "RankingResult": "ranking",
    "RatingMethod": "ranking",
    "StyleControl": "style",
    "TieModel": "bradley_terry",
    "WinRates": "winrates",
    "battle_arrays": "battles",
    "battle_counts": "battles",
    "bootstrap_bradley_terry": "bt_bootstrap",
    "bootstrap_bradley_terry_dense": "bt_reference",
    "bootstrap_prompt_counts": "bradley_terry",
    "bootstrap_reference_loop": "bt_reference",
    "check_ratable": "battles",
    "count_tables": "bradley_terry",
    "elo_ratings": "elo",
    "elo_reference_loop": "elo",
    "fit_bradley_terry": "bradley_terry",
    "fit_elo": "elo",
    "fit_elo_reference": "elo",
    "interval_ranks": "ranking",
    "length_preference": "bias",
    "newton_fit_batch": "bradley_terry",
    "observed_win_rates": "winrates",
    "parse_controls": "style",
    "position_bias": "bias",
    "position_bias_by_judge": "bias",
    "predicted_win_rates": "winrates",
    "prompt_count_tables": "bradley_terry",
    "random_orderings": "elo",
    "rank_battles": "ranking",
    "style_covariates": "style",
    "summarize_elo": "elo",
    "win_rates": "winrates",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))


__all__ = [
    "DEFAULT_ROUNDS",
    "Adjustments",
    "BTBootstrap",
    "BTFit",
    "BattleArrays",
    "Coefficient",
    "ControlledRow",
    "EloIntervals",
    "EloResult",
    "FitOptions",
    "LengthPreference",
    "PositionBias",
    "RankingResult",
    "RatingMethod",
    "StyleControl",
    "TieModel",
    "WinRates",
    "battle_arrays",
    "battle_counts",
    "bootstrap_bradley_terry",
    "bootstrap_bradley_terry_dense",
    "bootstrap_prompt_counts",
    "bootstrap_reference_loop",
    "check_ratable",
    "count_tables",
    "elo_ratings",
    "elo_reference_loop",
    "fit_bradley_terry",
    "fit_elo",
    "fit_elo_reference",
    "fit_options",
    "fit_options_from_mapping",
    "interval_ranks",
    "length_preference",
    "newton_fit_batch",
    "observed_win_rates",
    "parse_controls",
    "position_bias",
    "position_bias_by_judge",
    "predicted_win_rates",
    "prompt_count_tables",
    "random_orderings",
    "rank_battles",
    "style_covariates",
    "summarize_elo",
    "win_rates",
]

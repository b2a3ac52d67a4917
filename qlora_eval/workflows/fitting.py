"""One fit of judgments with the user's fit options (shared by ``rank``, ``tournament`` and ``place``).

It turns :class:`~qlora_eval.rating.FitOptions` into the rating engine's arguments, builds the style
covariates from the answer texts when ``--control`` asks for them, records the options in the result's
``parameters["fit"]`` (so the rank document says how it was fitted), and rewrites an unbounded
Bradley-Terry fit's error so that it names the flags that fix it (``--prior``, ``--method elo``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qlora_eval.errors import ConfigError, ConvergenceError, InputError
from qlora_eval.types import Judgment

if TYPE_CHECKING:
    import numpy as np

    from qlora_eval.config import RatingConfig
    from qlora_eval.rating import FitOptions, RankingResult, RatingMethod
    from qlora_eval.rating.battles import BattleArrays


def rank_judgments(
    judgments: Sequence[Judgment],
    method: RatingMethod,
    rounds: int,
    rng: np.random.Generator,
    fit: FitOptions,
    *,
    answer_text: Callable[[str], str | None] | None = None,
    lengths: tuple[list[float], list[float]] | None = None,
) -> RankingResult:
    """Rate the judgments with ``fit``'s options.

    Args:
        judgments: the verdicts (INVALID included: counted, not rated).
        method: Elo or Bradley-Terry.
        rounds: orderings / bootstrap rounds.
        rng: the source of randomness.
        fit: the fit options.
        answer_text: answer key -> stored text (None when the answers are not at hand); needed by ``--control``.
        lengths: answer lengths for the length-preference statistic.

    Raises:
        InputError: ``--control`` without the answers of every judgment.
        ConfigError: Bradley-Terry-only options with Elo (named), an unknown anchor.
        ConvergenceError: no finite Bradley-Terry estimate; the message names ``--prior`` and ``--method elo``.
    """
    from qlora_eval.rating import RatingMethod, rank_battles

    bt_only = fit.bt_only_set()
    if method is RatingMethod.ELO and bt_only:
        raise ConfigError(f"{', '.join(bt_only)} apply to Bradley-Terry only; drop them or use --method bt")
    arrays = judgment_arrays(judgments)
    style = None
    if fit.controls:
        style = style_inputs(judgments, fit, answer_text)
    anchor, base = (fit.anchor[0], fit.anchor[1]) if fit.anchor is not None else (None, 1000.0)
    if anchor is not None and anchor not in arrays.models:
        raise InputError(f"--anchor {anchor}={base:g}: no battle names model {anchor!r}")
    try:
        result = rank_battles(
            arrays,
            method,
            rounds,
            rng,
            tie_model=fit.tie_model,
            prior=fit.prior,
            anchor=anchor,
            base=base,
            answer_lengths=lengths,
            elo_intervals=fit.elo_intervals,
            position_advantage=fit.position_bias,
            style=style,
        )
    except ConvergenceError as exc:
        raise ConvergenceError(
            f"{exc}. To rate anyway: --prior 1 (one virtual game per pair of models, a small shrinkage), "
            "or --method elo"
        ) from None
    parameters = {**result.parameters, "fit": fit.to_json(method.value)}
    return dataclasses.replace(result, parameters=parameters)


def judgment_arrays(judgments: Sequence[Judgment]) -> BattleArrays:
    """The rating engine's arrays of the judgments: the same as those of ``[j.to_battle() for j in judgments]``
    (prompt ids ``prompt_set/prompt_id``), built from columns so that a million verdicts cost no million
    ``Battle`` objects."""
    from qlora_eval.rating.battles import battle_arrays_from_columns

    return battle_arrays_from_columns(
        [j.model_a for j in judgments],
        [j.model_b for j in judgments],
        [j.verdict for j in judgments],
        [f"{j.prompt_set}/{j.prompt_id}" for j in judgments],  # Judgment.to_battle's prompt id
        [j.judge for j in judgments],
    )


def style_inputs(
    judgments: Sequence[Judgment], fit: FitOptions, answer_text: Callable[[str], str | None] | None
) -> tuple[list[list[float]], tuple[str, ...]]:
    """Style covariates of the judgments (aligned with them) from the texts of the answers they name.

    Raises:
        InputError: a judgment without linked, stored answers (the message says how to provide them).
    """
    from qlora_eval.rating import style_covariates

    texts_a: list[str] = []
    texts_b: list[str] = []
    for j in judgments:
        a = answer_text(j.answer_a_key) if answer_text is not None and j.answer_a_key is not None else None
        b = answer_text(j.answer_b_key) if answer_text is not None and j.answer_b_key is not None else None
        if a is None or b is None:
            raise InputError(
                f"--control {','.join(c.value for c in fit.controls)} needs the text of both answers of every verdict, "
                f"but the verdict of {j.judge} on {j.prompt_set}/{j.prompt_id} ({j.model_a} vs {j.model_b}) has no "
                "stored answer: rank --db a store holding the answers (judged there, or imported with the answers: "
                "--format answers or qlora-generations, then verdicts in --format jsonl with answer_a_key/"
                "answer_b_key), or drop --control"
            )
        texts_a.append(a)
        texts_b.append(b)
    z, names = style_covariates(texts_a, texts_b, fit.controls)
    return z.tolist(), names


def stored_answer_texts(db: Path, prompt_sets: Sequence[str]) -> dict[str, str]:
    """Answer key -> text of the stored answers of these prompt sets."""
    from qlora_eval.store import Store

    texts: dict[str, str] = {}
    with Store(db) as store:
        for prompt_set in sorted(set(prompt_sets)):
            texts.update({a.answer_key: a.text for a in store.answers(prompt_set=prompt_set)})
    return texts


def fit_from_config(rating: RatingConfig) -> FitOptions:
    """The fit options of a tournament's ``rating:`` mapping (already checked by the config loader)."""
    from qlora_eval.rating import fit_options

    return fit_options(
        elo_intervals=rating.elo_intervals,
        ties=rating.ties,
        prior=rating.prior,
        anchor=rating.anchor,
        position_bias=rating.position_bias,
        control=list(rating.control),
    )


def rank_with_fallback(
    judgments: Sequence[Judgment],
    method: RatingMethod,
    rounds: int,
    rng: np.random.Generator,
    fit: FitOptions,
    *,
    answer_text: Callable[[str], str | None] | None = None,
    lengths: tuple[list[float], list[float]] | None = None,
) -> tuple[RankingResult, str | None]:
    """A tournament's fit: Elo gets only the Elo options; Bradley-Terry without a finite estimate (and no
    ``prior`` chosen) is refitted with one virtual game per pair, and a note says so.

    Returns:
        The result and the note (None when the plain fit worked).
    """
    from qlora_eval.rating import FitOptions, RatingMethod

    if method is RatingMethod.ELO:
        fit = FitOptions(elo_intervals=fit.elo_intervals)
    try:
        return rank_judgments(judgments, method, rounds, rng, fit, answer_text=answer_text, lengths=lengths), None
    except ConvergenceError as exc:
        if method is not RatingMethod.BT or fit.prior != 0.0:
            raise
        note = f"plain Bradley-Terry has no finite estimate ({exc}); fitted with prior=1 (one virtual tie per pair)"
        shrunk = dataclasses.replace(fit, prior=1.0)
        return rank_judgments(judgments, method, rounds, rng, shrunk, answer_text=answer_text, lengths=lengths), note

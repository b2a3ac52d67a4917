"""Relative scoring (the QLoRA paper's "% of ChatGPT" table): each model's total score as a percentage of a
reference model's, over the same prompts and calls, with a prompt-bootstrap 95% interval.

A relative call shows the judge two answers and gets a score for each (the paper: 1 to 10, first line
``S1 S2``). For a model M and the reference R, every valid call that showed M against R contributes M's
score to M's total and R's score to R's total, in whichever order they were shown (judging both orders
cancels position bias). ``percent = 100 * total(M) / total(R)``. INVALID calls (no parsable pair) add to
neither total and are counted.

The interval resamples prompts with replacement (all calls of a prompt stay together: they share the
question), ``rounds`` times, and takes the 2.5 and 97.5 percentiles of the percentage.

Pure numpy, no I/O, an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qlora_eval.errors import InputError, nearest_names
from qlora_eval.types import RelativeJudgment

DEFAULT_RELATIVE_ROUNDS = 1000


@dataclass(frozen=True)
class RelativeScore:
    """One model's score relative to the reference.

    Attributes:
        model: the model.
        percent: 100 * its total score / the reference's total score over the same valid calls.
        ci_low, ci_high: the 2.5 and 97.5 percentiles of ``percent`` over prompt bootstrap rounds.
        prompts: prompts with at least one valid call against the reference.
        calls: valid calls against the reference.
        invalid: calls against the reference without a parsable score pair (not scored).
    """

    model: str
    percent: float
    ci_low: float
    ci_high: float
    prompts: int
    calls: int
    invalid: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "percent": self.percent,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "prompts": self.prompts,
            "calls": self.calls,
            "invalid": self.invalid,
        }


@dataclass(frozen=True)
class RelativeTable:
    """Every model's relative score (best first) against one reference.

    Attributes:
        reference: the reference model.
        models: the scored models, best first.
        rounds: bootstrap rounds.
        unscored: models whose every call against the reference was INVALID -> how many such calls.
    """

    reference: str
    models: tuple[RelativeScore, ...]
    rounds: int
    unscored: dict[str, int]

    def to_json_dict(self) -> dict[str, Any]:
        """``{"method": "relative", "reference", "rounds", "models": [{"model", "percent", "ci_low", ...}]}``."""
        return {
            "method": "relative",
            "reference": self.reference,
            "rounds": self.rounds,
            "models": [m.to_dict() for m in self.models],
            "unscored": dict(self.unscored),
        }


def percent_of_reference(
    own: np.ndarray, reference: np.ndarray, prompt: np.ndarray, rounds: int, rng: np.random.Generator
) -> tuple[float, float, float]:
    """One model's percentage of the reference, with its prompt-bootstrap 95% interval.

    Args:
        own: (n_calls,) the model's score in each valid call.
        reference: (n_calls,) the reference's score in the same calls.
        prompt: (n_calls,) integer prompt index of each call (any labels; calls of one prompt are resampled together).
        rounds: bootstrap rounds (>= 2).
        rng: the random generator.

    Returns:
        (percent, ci_low, ci_high).

    Raises:
        ValueError: mismatched shapes, no calls, fewer than 2 rounds, or a reference total of 0.
    """
    if not own.shape == reference.shape == prompt.shape or own.ndim != 1:
        raise ValueError(
            "own, reference and prompt must be equal-length vectors, "
            f"got {own.shape}, {reference.shape}, {prompt.shape}"
        )
    if own.size == 0:
        raise ValueError("no calls to score")
    if rounds < 2:
        raise ValueError(f"rounds must be at least 2, got {rounds}")
    _, index = np.unique(prompt, return_inverse=True)
    n_prompts = int(index.max()) + 1
    own_p = np.bincount(index, weights=own, minlength=n_prompts)  # (n_prompts,) per-prompt totals
    ref_p = np.bincount(index, weights=reference, minlength=n_prompts)
    if ref_p.sum() <= 0:
        raise ValueError("the reference's total score is 0; a percentage of it is undefined")
    percent = 100.0 * own_p.sum() / ref_p.sum()
    # counts[r, p]: how often prompt p is drawn in round r (a multinomial draw = resampling prompts).
    counts = rng.multinomial(n_prompts, np.full(n_prompts, 1.0 / n_prompts), size=rounds)  # (rounds, n_prompts)
    ref_tot = counts @ ref_p
    if np.any(ref_tot <= 0):
        raise ValueError("a bootstrap round drew only prompts where the reference scored 0; the interval is undefined")
    samples = 100.0 * (counts @ own_p) / ref_tot  # (rounds,)
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(percent), float(low), float(high)


def relative_table(
    judgments: Sequence[RelativeJudgment], reference: str, rounds: int, rng: np.random.Generator
) -> RelativeTable:
    """Every model that met ``reference`` in a relative call, as a percentage of the reference's score.

    Calls between two other models are not used (the percentage is against the reference only).

    Raises:
        InputError: no call involves ``reference`` (the message lists the models that have calls).
        ValueError: see :func:`percent_of_reference`.
    """
    calls: dict[str, list[tuple[float, float, str]]] = {}
    invalid: dict[str, int] = {}
    for j in judgments:
        if reference not in (j.model_a, j.model_b):
            continue
        other = j.model_b if j.model_a == reference else j.model_a
        calls.setdefault(other, [])
        if j.scores is None:
            invalid[other] = invalid.get(other, 0) + 1
            continue
        own, ref = (j.scores[1], j.scores[0]) if j.model_a == reference else j.scores
        calls[other].append((own, ref, f"{j.prompt_set}/{j.prompt_id}"))
    if not calls:
        known = sorted({j.model_a for j in judgments} | {j.model_b for j in judgments})
        raise InputError(
            f"no relative judgment involves the reference {reference!r}; models with relative judgments: "
            f"{', '.join(known) or 'none'}" + nearest_names([reference], known)
        )
    rows: list[RelativeScore] = []
    unscored: dict[str, int] = {}
    for model in sorted(calls):
        valid = calls[model]
        if not valid:
            unscored[model] = invalid[model]  # only INVALID calls: no percentage, reported apart
            continue
        own_scores = np.array([c[0] for c in valid])  # (n_calls,)
        ref_scores = np.array([c[1] for c in valid])  # (n_calls,)
        labels = np.array([c[2] for c in valid])  # (n_calls,) prompt labels
        percent, low, high = percent_of_reference(own_scores, ref_scores, labels, rounds, rng)
        prompts = len(set(labels.tolist()))
        rows.append(RelativeScore(model, percent, low, high, prompts, len(valid), invalid.get(model, 0)))
    rows.sort(key=lambda r: (-r.percent, r.model))
    return RelativeTable(reference, tuple(rows), rounds, unscored)

"""Where does a new model land on a leaderboard? The adaptive choice of rivals, free of any I/O.

:func:`place_model` starts from the board's own ranking, plays the new model against the board model
nearest the middle (its expected rating before any verdict), refits, and then plays the next rival on the
side where the new model's interval is widest (the nearest unplayed model above its rating when the
interval reaches further up, below otherwise), until ``rivals`` have been played, its interval no longer
overlaps its neighbours' and it has met both of them (its place is settled), the judging stops (budget),
or nobody is left. Playing a
rival (judging both orders on all prompts) and fitting are callbacks, so the same loop serves the
``place`` workflow (a real judge, the store) and the leave-one-out benchmark (stored verdicts).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qlora_eval.errors import InputError
from qlora_eval.types import Judgment

if TYPE_CHECKING:
    from qlora_eval.rating import RankingResult


@dataclass(frozen=True)
class Played:
    """What playing one rival gave: the pair's verdicts, the calls paid for, whether judging stopped (budget)."""

    judgments: tuple[Judgment, ...]
    calls: int
    stopped: bool = False


@dataclass(frozen=True)
class Step:
    """One rival played and the new model's rating after the refit."""

    rival: str
    calls: int
    rating: float
    ci_low: float
    ci_high: float

    def to_json(self) -> dict[str, Any]:
        return {
            "rival": self.rival,
            "calls": self.calls,
            "rating": self.rating,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }


@dataclass(frozen=True)
class Placement:
    """The result of placing a model.

    Attributes:
        model: the new model.
        rivals: the rivals it met, in order (earlier runs' rivals first).
        calls: judge calls paid for by this run.
        round_robin_calls: calls a full round robin against the board would need (both orders, all prompts).
        stopped: why the loop ended: ``rivals`` (K played), ``separated`` (its interval left its neighbours'),
            ``budget`` (judging stopped), ``board`` (no unplayed model left).
        steps: one per rival played by this run.
    """

    model: str
    rivals: tuple[str, ...]
    calls: int
    round_robin_calls: int
    stopped: str
    steps: tuple[Step, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The ``placement`` key of the rank document."""
        return {
            "model": self.model,
            "rivals": list(self.rivals),
            "calls": self.calls,
            "round_robin_calls": self.round_robin_calls,
            "stopped": self.stopped,
            "steps": [s.to_json() for s in self.steps],
        }


def involves(judgment: Judgment, model: str) -> bool:
    return model in (judgment.model_a, judgment.model_b)


def opponents(judgments: Sequence[Judgment], model: str) -> list[str]:
    """The models ``model`` has met, in the order of their first verdict."""
    seen: dict[str, None] = {}
    for j in judgments:
        if j.model_a == model:
            seen.setdefault(j.model_b)
        elif j.model_b == model:
            seen.setdefault(j.model_a)
    return list(seen)


def first_rival(board: RankingResult, exclude: Sequence[str] = ()) -> str:
    """The board model nearest the middle of the board (the median rating): the new model's expected rating."""
    rows = [r for r in board.ratings if r.model not in exclude]
    middle = statistics.median(r.rating for r in rows)
    return min(rows, key=lambda r: (abs(r.rating - middle), r.model)).model


def next_rival(result: RankingResult, model: str, unplayed: Sequence[str]) -> str:
    """The nearest unplayed model on the side where ``model``'s interval is widest (the other side if none)."""
    me = result.rating_of(model)
    candidates = [r for r in result.ratings if r.model in set(unplayed)]
    up = me.ci_high - me.rating >= me.rating - me.ci_low
    side = [r for r in candidates if (r.rating >= me.rating) == up]
    pool = side or candidates
    return min(pool, key=lambda r: (abs(r.rating - me.rating), r.model)).model


def separated(result: RankingResult, model: str, played: Sequence[str]) -> bool:
    """Whether ``model``'s place is settled: its interval overlaps neither neighbour's (the models just above and
    below it), and it has met both neighbours itself.

    The second condition keeps one lucky pairing from ending the search: a rating that rests only on
    opponents far away extrapolates the logistic curve, while the direct comparison with a neighbour is what
    decides the rank.
    """
    order = [r.model for r in result.ratings]  # best first
    i = order.index(model)
    me = result.ratings[i]
    above = result.ratings[i - 1] if i > 0 else None
    below = result.ratings[i + 1] if i + 1 < len(order) else None
    for neighbour in (above, below):
        if neighbour is not None and neighbour.model not in played:
            return False
    return (above is None or me.ci_high < above.ci_low) and (below is None or me.ci_low > below.ci_high)


def place_model(
    judgments: Sequence[Judgment],
    model: str,
    *,
    rivals: int,
    fit: Callable[[Sequence[Judgment]], RankingResult],
    play: Callable[[str], Played],
    round_robin_calls: int,
) -> tuple[list[Judgment], Placement]:
    """Place ``model`` on the board of ``judgments``.

    Args:
        judgments: the board's verdicts (the new model's earlier verdicts, if any, included: they are reused).
        model: the new model.
        rivals: how many rivals at most (K, at least 1), earlier runs' rivals included.
        fit: judgments -> ranking (Bradley-Terry or Elo with intervals).
        play: rival -> the verdicts of ``model`` against it on every prompt in both orders.
        round_robin_calls: what a full round robin would cost (recorded for comparison).

    Returns:
        All judgments (the board's plus the new ones) and the :class:`Placement`.

    Raises:
        InputError: ``rivals`` < 1, or a board of fewer than two other models.
    """
    if rivals < 1:
        raise InputError(f"--rivals must be at least 1, got {rivals}")
    all_judgments = list(judgments)
    board_models = sorted({m for j in all_judgments for m in (j.model_a, j.model_b)} - {model})
    if len(board_models) < 2:
        raise InputError(
            f"placing {model} needs a board of at least two other models judged by this judge on this prompt set, "
            f"found {len(board_models)} ({', '.join(board_models) or 'none'}); judge a round robin first "
            "(qlora-eval judge --models ...)"
        )
    played = [m for m in opponents(all_judgments, model) if m in board_models]
    steps: list[Step] = []
    calls = 0
    stopped = "rivals"
    result: RankingResult | None = fit(all_judgments) if played else None
    while len(played) < rivals:
        if result is not None and separated(result, model, played):
            stopped = "separated"
            break
        unplayed = [m for m in board_models if m not in played]
        if not unplayed:
            stopped = "board"
            break
        if result is None:
            rival = first_rival(fit([j for j in all_judgments if not involves(j, model)]))
        else:
            rival = next_rival(result, model, unplayed)
        outcome = play(rival)
        calls += outcome.calls
        all_judgments += outcome.judgments  # the pair had no verdict before (the rival was unplayed)
        played.append(rival)
        if not any(involves(j, model) for j in all_judgments):
            stopped = "budget" if outcome.stopped else "board"
            break
        result = fit(all_judgments)
        me = result.rating_of(model)
        steps.append(Step(rival, outcome.calls, me.rating, me.ci_low, me.ci_high))
        if outcome.stopped:
            stopped = "budget"
            break
    else:
        if result is not None and separated(result, model, played):
            stopped = "separated"
    return all_judgments, Placement(model, tuple(played), calls, round_robin_calls, stopped, tuple(steps))

"""Leave-one-out check of ``qlora-eval place``: does a model placed with 3 rivals land where the round robin puts it?

Data: the QLoRA paper's pairwise GPT-4 verdict files on the Vicuna prompts are not available offline here,
so this script *simulates* Vicuna-shaped verdicts the way ``benchmarks/rank_process.py`` does: the same 8
models with known strengths, every ordered pair on the 80 Vicuna prompt ids (both presentation orders),
a +35 Elo first-position bias, 15% ties and ~2% unparsable (INVALID) reviews.

For each of the 8 models: the board is every verdict between the other 7; the placement loop
(:func:`qlora_eval.workflows.placement.place_model`, the one ``place`` runs) picks 3 rivals, and "playing"
a rival returns the simulated verdicts of that pair (what a judge would have said). The figure compared is
the model's Bradley-Terry rating relative to the mean of the others, placed vs the full round robin fit
(all 28 pairs); calls are the verdicts the placement needed against the round robin's 7 x 80 x 2.

Usage: python benchmarks/place_loo.py [--seed 0] [--rivals 3] [--rounds 200]
Prints JSON: per-model errors, max and median absolute error (target: within 15 Elo), calls and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence

import numpy as np

from qlora_eval.rating import FitOptions, RankingResult, RatingMethod
from qlora_eval.types import Judgment, Order, Verdict
from qlora_eval.workflows.fitting import rank_judgments
from qlora_eval.workflows.placement import Played, place_model

MODELS = ["guanaco-65b", "guanaco-33b", "vicuna-13b", "guanaco-13b", "chatgpt", "bard", "guanaco-7b", "alpaca-13b"]
STRENGTH = dict(zip(MODELS, [1120.0, 1090.0, 1040.0, 1030.0, 1010.0, 980.0, 940.0, 880.0], strict=True))
PROMPTS = 80
FIRST_POSITION_BIAS = 35.0


def simulate(seed: int) -> list[Judgment]:
    """Every ordered pair on every prompt: verdicts from the strengths, position bias, ties and INVALID reviews."""
    rng = np.random.default_rng(seed)
    out: list[Judgment] = []
    for a in MODELS:
        for b in MODELS:
            if a == b:
                continue
            p_a = 1.0 / (1.0 + 10 ** ((STRENGTH[b] - STRENGTH[a] - FIRST_POSITION_BIAS) / 400.0))
            for q in range(PROMPTS):
                u = rng.random()
                if u < 0.02:
                    verdict = Verdict.INVALID
                elif u < 0.17:
                    verdict = Verdict.TIE
                else:
                    verdict = Verdict.A if rng.random() < p_a else Verdict.B
                out.append(
                    Judgment(
                        judge="gpt-4",
                        model_a=a,
                        model_b=b,
                        prompt_set="vicuna",
                        prompt_id=str(q + 1),
                        order=Order.of(a, b),
                        verdict=verdict,
                    )
                )
    return out


def relative(result: RankingResult, model: str) -> float:
    """``model``'s rating minus the mean rating of the others."""
    others = [r.rating for r in result.ratings if r.model != model]
    return result.rating_of(model).rating - float(np.mean(others))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rivals", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--ties", choices=["half", "davidson"], default="half")
    parser.add_argument(
        "--seeds", type=int, default=1, help="repeat on this many simulated data sets (seed, seed+1...)"
    )
    args = parser.parse_args()
    report = leave_one_out(args.seed, args.rivals, args.rounds, args.ties)
    if args.seeds > 1:
        others = [leave_one_out(args.seed + k, args.rivals, args.rounds, args.ties) for k in range(1, args.seeds)]
        report["repeats"] = [
            {key: r[key] for key in ("seed", "max_abs_error_elo", "median_abs_error_elo", "calls_ratio")}
            for r in [report, *others]
        ]
    print(json.dumps(report, indent=2))


def leave_one_out(seed: int, rivals: int, rounds: int, ties: str) -> dict[str, object]:
    """Place every model in turn on one simulated data set; returns the figures."""
    verdicts = simulate(seed)
    options = FitOptions(ties=ties)

    def fit(judgments: Sequence[Judgment]) -> RankingResult:
        return rank_judgments(judgments, RatingMethod.BT, rounds, np.random.default_rng(seed), options)

    full = fit(verdicts)
    rows = []
    for model in MODELS:
        board = [j for j in verdicts if model not in (j.model_a, j.model_b)]

        def play(rival: str, model: str = model) -> Played:
            pair = [j for j in verdicts if {j.model_a, j.model_b} == {model, rival}]
            return Played(tuple(pair), len(pair))

        round_robin = sum(1 for j in verdicts if model in (j.model_a, j.model_b))
        judgments, placement = place_model(
            board, model, rivals=rivals, fit=fit, play=play, round_robin_calls=round_robin
        )
        placed = fit(judgments)
        error = relative(placed, model) - relative(full, model)
        rows.append(
            {
                "model": model,
                "full_relative": round(relative(full, model), 1),
                "placed_relative": round(relative(placed, model), 1),
                "error": round(error, 1),
                "rivals": list(placement.rivals),
                "stopped": placement.stopped,
                "calls": placement.calls,
                "round_robin_calls": round_robin,
            }
        )
    errors = [abs(r["error"]) for r in rows]  # type: ignore[arg-type]
    calls = sum(int(r["calls"]) for r in rows)  # type: ignore[call-overload]
    round_robin_calls = sum(int(r["round_robin_calls"]) for r in rows)  # type: ignore[call-overload]
    return {
        "data": "simulated Vicuna-shaped verdicts (8 models x 80 prompts x both orders, +35 first-position "
        "bias, 15% ties, ~2% invalid); the paper's GPT-4 verdict files are not available offline",
        "method": "bt",
        "ties": ties,
        "rivals": rivals,
        "seed": seed,
        "models": rows,
        "max_abs_error_elo": round(max(errors), 1),
        "median_abs_error_elo": round(statistics.median(errors), 1),
        "calls": calls,
        "round_robin_calls": round_robin_calls,
        "calls_ratio": round(calls / round_robin_calls, 3),
    }


if __name__ == "__main__":
    main()

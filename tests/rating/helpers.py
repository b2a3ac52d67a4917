"""Synthetic battles for the rating tests."""

from __future__ import annotations

import numpy as np

from qlora_eval.types import Battle, Verdict


def synthetic_battles(
    rng: np.random.Generator,
    strengths: dict[str, float],
    n_prompts: int,
    *,
    tie_rate: float = 0.15,
    judges: tuple[str, ...] = ("judge-1",),
    prompt_prefix: str = "p",
) -> list[Battle]:
    """Every pair on every prompt, in both orders, for each judge; outcomes drawn from a logistic model."""
    names = sorted(strengths)
    battles: list[Battle] = []
    for p in range(n_prompts):
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                for judge in judges:
                    for first, second in ((a, b), (b, a)):
                        diff = (strengths[first] - strengths[second]) * np.log(10) / 400
                        p_first = 1 / (1 + np.exp(-diff))
                        u = rng.random()
                        if u < tie_rate:
                            verdict = Verdict.TIE
                        elif u < tie_rate + (1 - tie_rate) * p_first:
                            verdict = Verdict.A
                        else:
                            verdict = Verdict.B
                        battles.append(Battle(first, second, verdict, prompt_id=f"{prompt_prefix}{p}", judge=judge))
    return battles

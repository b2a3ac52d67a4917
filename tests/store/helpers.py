"""Shared test data of the store tests."""

from __future__ import annotations

from qlora_eval.types import Judgment, Order, Verdict


def judgment(prompt_id: str = "1", verdict: Verdict = Verdict.A, a: str = "m1", b: str = "m2") -> Judgment:
    return Judgment(
        judge="gpt-4",
        model_a=a,
        model_b=b,
        prompt_set="vicuna",
        prompt_id=prompt_id,
        verdict=verdict,
        order=Order.of(a, b),
        template_hash="t1",
        settings={"temperature": 0.0},
    )

"""``--reuse-imported``: an imported verdict stands in for a call only if it is about the answers planned.

Regression: the index was keyed by (prompt, shown first, shown second) alone, so a verdict about an answer that
was since regenerated (or answers to an older prompt text) still counted as done and the new answer was never
judged.
"""

from __future__ import annotations

from qlora_eval.interchange.answers import IMPORTED_SPEC_PREFIX
from qlora_eval.judge.plan import latest_answers, plan_judgments, reusable_verdicts
from qlora_eval.judge.templates import load_templates
from qlora_eval.types import Answer, Judgment, Message, Order, Prompt, Role, Verdict
from tests.judge.conftest import make_prompts

MODELS = ("alpha", "beta", "gamma")


def _answer(model: str, prompt: Prompt, spec: str, text: str = "an answer") -> Answer:
    return Answer(model, spec, prompt.prompt_set, prompt.prompt_id, prompt.content_hash, text, {})


def _verdicts(prompts: list[Prompt], answers: dict[tuple[str, str], Answer], *, with_keys: bool) -> list[Judgment]:
    """Imported verdicts of ``gpt-4`` on every pair, both orders (answer keys named or, as in review files, not)."""
    out = []
    for p in prompts:
        for a in MODELS:
            for b in MODELS:
                if a == b:
                    continue
                out.append(
                    Judgment(
                        judge="gpt-4",
                        model_a=a,
                        model_b=b,
                        prompt_set=p.prompt_set,
                        prompt_id=p.prompt_id,
                        verdict=Verdict.A,
                        order=Order.FORWARD if a < b else Order.SWAPPED,
                        answer_a_key=answers[(a, p.prompt_id)].answer_key if with_keys else None,
                        answer_b_key=answers[(b, p.prompt_id)].answer_key if with_keys else None,
                    )
                )
    return out


def _plan(prompts: list[Prompt], stored_answers: list[Answer], verdicts: list[Judgment]) -> tuple[int, set[str]]:
    """(number reused, prompt_id:first:second of each call still planned)."""
    plan = plan_judgments(
        prompts=prompts,
        answers=latest_answers(stored_answers, prompts),
        models=MODELS,
        judge_id="openai:gpt-4-new",
        judge_settings={},
        templates=load_templates(),
        is_stored=lambda _key: False,
        reusable=reusable_verdicts([(j.judgment_key, j) for j in verdicts]),
    )
    planned = {f"{r.prompt.prompt_id}:{r.answer_a.model}:{r.answer_b.model}" for r in plan.requests}
    return len(plan.reused_keys), planned


def test_review_file_verdicts_cover_only_the_imported_answers() -> None:
    prompts = make_prompts(2)
    imported = [_answer(m, p, IMPORTED_SPEC_PREFIX + m) for m in MODELS for p in prompts]
    verdicts = _verdicts(prompts, latest_answers(imported, prompts), with_keys=False)
    assert _plan(prompts, imported, verdicts) == (12, set())  # 2 prompts x 3 pairs x 2 orders
    # beta's answer to prompt 1 is generated anew (a newer stored answer under another spec): its 4 calls there
    # are planned again, everything else stays reused.
    regenerated = [*imported, _answer("beta", prompts[0], "hf:some/beta", "a new answer")]
    reused, planned = _plan(prompts, regenerated, verdicts)
    assert reused == 8
    assert planned == {"1:alpha:beta", "1:beta:alpha", "1:beta:gamma", "1:gamma:beta"}


def test_verdicts_naming_answer_keys_need_the_planned_keys() -> None:
    prompts = make_prompts(2)
    first = [_answer(m, p, f"dummy:{m}") for m in MODELS for p in prompts]
    verdicts = _verdicts(prompts, latest_answers(first, prompts), with_keys=True)
    assert _plan(prompts, first, verdicts) == (12, set())  # not imported answers, but the very keys named
    again = [*first, _answer("gamma", prompts[1], "dummy:gamma-v2", "a new answer")]
    reused, planned = _plan(prompts, again, verdicts)
    assert reused == 8
    assert planned == {"2:alpha:gamma", "2:gamma:alpha", "2:beta:gamma", "2:gamma:beta"}


def test_a_changed_prompt_text_is_judged_again() -> None:
    prompts = make_prompts(1)
    imported = [_answer(m, p, IMPORTED_SPEC_PREFIX + m) for m in MODELS for p in prompts]
    verdicts = _verdicts(prompts, latest_answers(imported, prompts), with_keys=True)
    changed = [Prompt(p.prompt_set, p.prompt_id, (Message(Role.USER, "A new text?"),), p.category) for p in prompts]
    fresh = [_answer(m, p, IMPORTED_SPEC_PREFIX + m) for m in MODELS for p in changed]  # re-imported, new text
    reused, planned = _plan(changed, [*imported, *fresh], verdicts)
    assert reused == 0 and len(planned) == 6

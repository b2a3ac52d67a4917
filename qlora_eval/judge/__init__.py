"""Pairwise judges: an OpenAI-compatible API judge and an offline local judge, with the never-pay-twice planner.

Usage::

    from qlora_eval.judge import session
    from qlora_eval.judge.plan import latest_answers
    from qlora_eval.judge.spec import parse_judge_spec

    spec = parse_judge_spec("openai:gpt-4")                      # or "local:smollm2-135m"
    options = session.JudgeOptions(budget_usd=5.0, concurrency=4)
    prompts = store.prompts("vicuna")
    answers = latest_answers(store.answers(prompt_set="vicuna"), prompts)
    plan = session.plan(store, spec=spec, options=options, prompts=prompts, answers=answers, models=["a", "b"])
    print(session.estimate(plan, spec, options).cost_usd)       # before spending anything
    summary = session.judge(store, plan, spec=spec, options=options)

Modules, one job each: :mod:`.templates` (versioned, hashed prompts), :mod:`.parse` (the verdict line),
:mod:`.kind` (the judge-kind contract and ``JudgeSpec``), :mod:`.registry` (the kinds in one table; ``spec``
re-exports the parser), :mod:`.options`, :mod:`.plan` (which calls, keyed by content), :mod:`.runner` (threads,
budget, storing, key checks), :mod:`.openai_judge` (re-ask; retries live in ``models.openai_client``),
:mod:`.local_judge` (next-token probabilities), :mod:`.pricing`, :mod:`.diagnostics` (agreement between
judges), :mod:`.session` (the whole job).
"""

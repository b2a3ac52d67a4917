"""Calibrate the tie margin of the ``local-likelihood`` judge on pairs that differ only by chance.

For every prompt of a tournament's prompt set, one contestant (default: the demo's full-precision sampler)
answers with the tournament's seed and with ``--extra-seeds`` held-out seeds. Two answers of one model and one
sampling setting that differ only by their seed are equally good in expectation, so their score difference is
the judge's noise. The margin is the median absolute difference over those null pairs (rounded to 0.01): such
pairs come out a tie half of the time. The figures also give, for context, the share of the tournament's real
pairs that the chosen margin makes ties.

    python benchmarks/likelihood_tie_margin.py --config tournaments/demo.yaml --db /tmp/calib.db \\
        --out benchmarks/results/likelihood_tie_margin.json

Answers are stored in ``--db`` and reused by a second run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path


def main() -> int:
    import numpy as np

    from qlora_eval.config import load_tournament_config
    from qlora_eval.generate.runner import generate_answers
    from qlora_eval.judge.likelihood_judge import answer_logprobs, parse_likelihood_target
    from qlora_eval.judge.plan import latest_answers
    from qlora_eval.models.hf import HFChatModel
    from qlora_eval.models.spec import parse_model_spec
    from qlora_eval.prompts import load_prompt_set
    from qlora_eval.store import Store
    from qlora_eval.types import GenerationSettings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("tournaments/demo.yaml"))
    parser.add_argument("--db", type=Path, required=True, help="store for the answers (reused between runs)")
    parser.add_argument("--contestant", type=int, default=0, help="index of the contestant that gives null pairs")
    parser.add_argument("--extra-seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--judge-model", default=None, help="judge model spec (default: the config's judge)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--null-only", action="store_true", help="generate only the null pairs' answers (other contestants: if stored)"
    )
    args = parser.parse_args()

    config = load_tournament_config(args.config)
    judge_target = args.judge_model or config.judge.spec.partition(":")[2]
    judge_model_spec = parse_likelihood_target(judge_target).model_spec
    prompt_set = load_prompt_set(config.prompts.name, data_dir=config.prompts.data_dir).limit(config.prompts.limit)
    start = time.perf_counter()
    answers = {}
    base = config.models[args.contestant]
    jobs = [(base.spec, base.sampling)] if args.null_only else [(m.spec, m.sampling) for m in config.models]
    base_name = parse_model_spec(base.spec).name
    if f"name={base_name}" not in base.spec:
        raise SystemExit(f"contestant {base.spec!r} needs a '?name=' option to derive the held-out names from")
    for seed in args.extra_seeds:
        spec_text = base.spec.replace(f"name={base_name}", f"name={base_name}-seed{seed}")
        jobs.append((spec_text, GenerationSettings(**{**base.sampling.to_dict(), "seed": seed})))
    with Store(args.db) as store:
        for spec_text, settings in jobs:
            report = generate_answers(
                store, [parse_model_spec(spec_text)], prompt_set, settings, batch_size=config.batch_size, progress=False
            )
            answers.update(latest_answers(report.answers, prompt_set.prompts))
        if args.null_only:  # the other contestants' stored answers, for the share of real pairs tied
            stored = latest_answers(store.answers(prompt_set=prompt_set.name), prompt_set.prompts)
            names = {parse_model_spec(m.spec).name for m in config.models}
            answers.update({k: a for k, a in stored.items() if k[0] in names and k not in answers})
    generated_s = time.perf_counter() - start
    keys = sorted(answers)
    by_id = {p.prompt_id: p for p in prompt_set.prompts}
    model = HFChatModel.from_spec(parse_model_spec(judge_model_spec), device="cpu")
    scores = answer_logprobs(model, [by_id[p].turns for _, p in keys], [answers[k].text for k in keys], batch_size=4)
    mean = {k: s.mean for k, s in zip(keys, scores, strict=True)}
    null_models = [base_name] + [f"{base_name}-seed{s}" for s in args.extra_seeds]
    null = [
        abs(mean[(a, p)] - mean[(b, p)])  # type: ignore[operator]
        for p in by_id
        for a, b in itertools.combinations(null_models, 2)
        if mean[(a, p)] is not None and mean[(b, p)] is not None
    ]
    margin = round(float(np.median(null)), 2)
    contestants = [
        n for n in (parse_model_spec(m.spec).name for m in config.models) if all((n, p) in mean for p in by_id)
    ]
    real = [
        abs(mean[(a, p)] - mean[(b, p)])  # type: ignore[operator]
        for p in by_id
        for a, b in itertools.combinations(contestants, 2)
        if mean[(a, p)] is not None and mean[(b, p)] is not None
    ]
    result = {
        "config": str(args.config),
        "judge_model": judge_model_spec,
        "null_models": null_models,
        "null_pairs": len(null),
        "null_abs_diff_quantiles": {str(q): round(float(np.quantile(null, q)), 4) for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
        "tie_margin": margin,
        "null_pairs_tied_at_margin": round(float(np.mean(np.array(null) <= margin)), 3),
        "contestant_pairs": len(real),
        "contestant_pairs_tied_at_margin": round(float(np.mean(np.array(real) <= margin)), 3),
        "mean_score_by_model": {
            m: round(float(np.mean([mean[(m, p)] for p in by_id if mean[(m, p)] is not None])), 4)
            for m in sorted({m for m, _ in keys})
        },
        "seconds": {"generate": round(generated_s, 1), "total": round(time.perf_counter() - start, 1)},
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

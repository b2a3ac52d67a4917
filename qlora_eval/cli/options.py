"""Options and output shared by several commands (``judge`` and ``tournament``), so no command imports another."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from qlora_eval.config import PAIRINGS
from qlora_eval.judge.openai_judge import RetryPolicy
from qlora_eval.judge.plan import JudgePlan
from qlora_eval.judge.registry import JUDGE_KINDS
from qlora_eval.judge.session import Estimate, JudgeOptions
from qlora_eval.judge.spec import DEFAULT_JUDGE, JudgeSpec
from qlora_eval.judge.templates import TEMPLATE_SETS


def _judge_help() -> str:
    """``--judge`` help built from the judge registry, so every registered kind is listed."""
    kinds = "; ".join(" ".join(kind.grammar.split()) for kind in JUDGE_KINDS.values())
    # argparse %-formats help strings
    return f"the judge, one of: {kinds} (default {DEFAULT_JUDGE})".replace("%", "%%")


def add_judge_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``judge`` and ``tournament``; unset ones are None (the defaults or the config apply)."""
    group = parser.add_argument_group("judge")
    group.add_argument(
        "--judge",
        default=None,
        help=_judge_help(),
    )
    group.add_argument("--pairs", choices=PAIRINGS, default=None, help="which model pairs meet (default all)")
    group.add_argument("--concurrency", type=int, default=None, help="openai judge calls in flight (default 4)")
    group.add_argument("--budget-usd", type=float, default=None, help="stop before spending more than this")
    group.add_argument("--dry-run", action="store_true", help="print the calls and estimated cost; spend nothing")
    group.add_argument("--temperature", type=float, default=None, help="judge temperature (default 0)")
    group.add_argument("--max-tokens", type=int, default=None, help="judge reply token limit (default 1024)")
    group.add_argument("--prices", type=Path, default=None, help="YAML price table on top of the shipped one")
    group.add_argument("--max-attempts", type=int, default=None, help="calls per judgment before failing (6)")
    group.add_argument("--timeout-s", type=float, default=None, help="seconds one judge call may take (120)")
    group.add_argument(
        "--judge-templates",
        choices=TEMPLATE_SETS,
        default=None,
        help="judge prompts: qlora-eval (ours, default) or qlora-paper (the QLoRA paper's GPT-4 reviewer prompts, "
        "fetched once from the pinned URL; offline: --data-dir)",
    )
    group.add_argument(
        "--judge-template-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="a folder of our-style judge templates with their manifest (default: the shipped ones)",
    )
    group.add_argument(
        "--local-batch-size",
        type=int,
        default=None,
        metavar="N",
        help="prompts per forward pass of a local (next-token or likelihood) judge (default 1 on a CPU, 8 on a GPU)",
    )
    group.add_argument(
        "--reuse-imported",
        default=None,
        metavar="JUDGE",
        help="imported verdicts of JUDGE (e.g. gpt-4) count as done for the same prompt, models and order",
    )
    group.add_argument(
        "--retry-invalid",
        action="store_true",
        default=None,
        help="pay again for judgments stored as INVALID (no verdict; kept, the retry is stored beside them)",
    )
    group.add_argument(
        "--batch",
        action="store_true",
        default=None,
        help="openai judges: submit through the Batch API at batch prices and return; rerun to collect",
    )


def options_from_args(args: argparse.Namespace) -> JudgeOptions:
    """JudgeOptions from the shared judge options (unset ones keep their defaults)."""
    base = JudgeOptions()
    retry = RetryPolicy(
        max_attempts=args.max_attempts if args.max_attempts is not None else base.retry.max_attempts,
        timeout_s=args.timeout_s if args.timeout_s is not None else base.retry.timeout_s,
    )
    return JudgeOptions(
        temperature=args.temperature if args.temperature is not None else base.temperature,
        max_tokens=args.max_tokens if args.max_tokens is not None else base.max_tokens,
        concurrency=args.concurrency if args.concurrency is not None else base.concurrency,
        budget_usd=args.budget_usd,
        prices_path=args.prices,
        retry=retry,
        seed=getattr(args, "seed", base.seed),
        pairs=args.pairs or base.pairs,
        batch=bool(getattr(args, "batch", None)),
        judge_templates=getattr(args, "judge_templates", None) or base.judge_templates,
        data_dir=getattr(args, "data_dir", None),
        reuse_imported=getattr(args, "reuse_imported", None),
        retry_invalid=bool(getattr(args, "retry_invalid", None)),
        template_dir=getattr(args, "judge_template_dir", None),
        local_batch_size=getattr(args, "local_batch_size", None),
    )


def format_estimate(est: Estimate, job: JudgePlan, spec: JudgeSpec) -> str:
    """The lines printed before judging (and by ``judge --dry-run``)."""
    lines = [
        f"judge {spec.judge_id}: {job.total} judgments planned, {len(job.stored_keys)} already stored, "
        f"{est.calls} calls to make (re-asks of unparsable replies come on top)",
        *(
            [f"reuse of imported verdicts saves {len(job.reused_keys)} calls (--reuse-imported)"]
            if job.reused_keys
            else []
        ),
        f"estimated tokens: ~{est.prompt_tokens} prompt ({est.token_method or 'not counted'}), at most "
        f"{est.max_completion_tokens} completion (reserved in full for the budget)",
    ]
    if est.priced:
        lines.append(f"estimated cost: ${est.cost_usd:.4f} (upper bound: every reply at --max-tokens)")
    else:
        lines.append(f"estimated cost: unknown: {spec.target!r} has no entry in the price table (--prices FILE)")
    return "\n".join(lines)


def estimate_dict(est: Estimate, job: JudgePlan) -> dict[str, Any]:
    """The dry run's figures for ``judge --dry-run --json``."""
    return {
        "planned": job.total,
        "already_stored": len(job.stored_keys),
        "reused_imported": len(job.reused_keys),
        "calls": est.calls,
        "estimated_prompt_tokens": est.prompt_tokens,
        "max_completion_tokens": est.max_completion_tokens,
        "estimated_cost_usd": round(est.cost_usd, 6) if est.priced else None,
    }

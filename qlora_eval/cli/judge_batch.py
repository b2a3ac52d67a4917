"""The ``--batch`` side of ``qlora-eval judge``: submit through the Batch API, poll, collect, and print.

Examples::

    qlora-eval judge --models a b c --judge openai:gpt-4o --batch --dry-run   # calls and cost at batch prices
    qlora-eval judge --models a b c --judge openai:gpt-4o --batch             # submit, return at once
    qlora-eval judge --batch-status                                            # poll, store what ended
    qlora-eval judge --models a b c --judge openai:gpt-4o --batch             # later: collect, resubmit failures
"""

from __future__ import annotations

from pathlib import Path

from qlora_eval.judge.batch_session import BatchRunSummary, batch_status, run_batch
from qlora_eval.judge.kind import JudgeSpec
from qlora_eval.judge.options import JudgeOptions
from qlora_eval.judge.plan import JudgePlan
from qlora_eval.store import Store


def submit_and_collect(store: Store, job: JudgePlan, spec: JudgeSpec, options: JudgeOptions) -> BatchRunSummary:
    """One ``judge --batch`` run, recorded as a store run."""
    run_id = store.start_run("judge --batch", {"judge": spec.text, "planned": job.total})
    summary: BatchRunSummary | None = None
    try:
        summary = run_batch(store, job, spec=spec, options=options, run_id=run_id)
    finally:
        status = "interrupted" if summary is None else ("done" if summary.complete else "waiting")
        store.finish_run(run_id, status, summary.to_dict() if summary else None)
    return summary


def status_only(db: Path, options: JudgeOptions) -> BatchRunSummary:
    """``judge --batch-status``: poll every open batch and store the results of those that ended."""
    with Store(db) as store:
        return batch_status(store, options=options)


def format_batch(summary: BatchRunSummary, spec: JudgeSpec | None) -> str:
    """What a batch run or status poll did, in a few lines."""
    c, s = summary.collected, summary.submitted
    who = f"judge {spec.judge_id} (batch)" if spec else "batch status"
    lines = []
    if summary.planned:
        lines.append(f"{who}: {summary.stored}/{summary.planned} judgments stored, {summary.in_flight} in batches")
    else:
        lines.append(f"{who}: {summary.in_flight} judgments in open batches")
    if c.collected or c.recovered or c.abandoned:
        lines.append(
            f"collected {c.collected} batches: {c.new} new judgments ({c.invalid} invalid), {c.failed} failed "
            f"(planned again), ${c.cost_usd:.4f} at batch prices"
            + (f"; {c.recovered} batches found after a crash" if c.recovered else "")
            + (f"; {c.abandoned} unsent submissions dropped" if c.abandoned else "")
        )
    for batch_id, status, done, total in c.pending:
        lines.append(f"batch {batch_id}: {status}, {done}/{total} requests done")
    if s is not None and (s.submitted or s.unconfirmed or s.not_started):
        lines.append(f"submitted {s.submitted} requests in {len(s.batches)} batches (estimate ${s.estimated_usd:.4f})")
        if s.unconfirmed:
            lines.append(f"{s.unconfirmed} requests: creating their batch gave no answer; the next run checks")
        if s.not_started:
            lines.append(f"{s.not_started} calls left out by --budget-usd; raise it and rerun")
    if not summary.complete and summary.in_flight:
        lines.append("run the same command (or qlora-eval judge --batch-status) later to collect the results")
    return "\n".join(lines)

"""Run a judge over a plan: batches on a thread pool, a spending budget, each result stored as it arrives.

Storing every judgment the moment its call returns is what bounds the loss of a killed run to the calls in
flight; the content key makes storing idempotent, so a rerun pays only for what is missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from qlora_eval.errors import InternalError
from qlora_eval.judge.base import Budget, Judge, JudgeOutcome, JudgeRequest
from qlora_eval.models.threads import ThreadChoice
from qlora_eval.store import Store
from qlora_eval.types import Verdict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JudgeRunSummary:
    """What a judging run did.

    Attributes:
        planned: judgments the run covers (already stored + attempted + left out by the budget).
        already_stored: judgments found in the store and not paid for again.
        new: judgments stored by this run.
        invalid: of the new ones, how many are INVALID (no verdict even after the re-ask).
        failed: calls that failed after their retry budget (recorded; the next run retries them).
        not_started: calls not started because the budget would have been exceeded.
        requests: calls sent to the judge (HTTP requests, or model forward passes for a local judge).
        reasked: calls re-asked once because the first reply had no verdict.
        cost_usd: dollars spent by this run.
        stopped_by_budget: whether the budget stopped the run before the plan was done.
        cpu_threads: a local judge on CPU: the torch thread count it ran with and why (else None).
        in_flight: Batch API runs: of ``not_started``, the judgments waiting in open batches (collected by a
            later run).
    """

    planned: int
    already_stored: int
    new: int
    invalid: int
    failed: int
    not_started: int
    requests: int
    reasked: int
    cost_usd: float
    stopped_by_budget: bool
    cpu_threads: ThreadChoice | None = None
    in_flight: int = 0

    @property
    def judgments(self) -> int:
        """Judgments of this run's plan now in the store."""
        return self.already_stored + self.new

    @property
    def complete(self) -> bool:
        """Every planned judgment is stored: none failed, none left unstarted (budget, batches in flight)."""
        return self.failed == 0 and self.not_started == 0

    def to_dict(self) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "judgments": self.judgments,
            "new": self.new,
            "invalid": self.invalid,
            "requests": self.requests,
            "cost_usd": round(self.cost_usd, 6),
            "planned": self.planned,
            "already_stored": self.already_stored,
            "failed": self.failed,
            "not_started": self.not_started,
            "reasked": self.reasked,
            "stopped_by_budget": self.stopped_by_budget,
        }
        if self.in_flight:
            figures["in_flight"] = self.in_flight
        if self.cpu_threads is not None:
            figures["cpu_threads"] = self.cpu_threads.to_dict()
        return figures


def run_judge(
    store: Store,
    judge: Judge,
    requests: Sequence[JudgeRequest],
    *,
    already_stored: int,
    budget: Budget,
    run_id: int | None = None,
    progress: bool = True,
) -> JudgeRunSummary:
    """Judge ``requests`` (none of them stored yet), storing each outcome as soon as it arrives.

    Args:
        store: where judgments and failures go.
        judge: the judge.
        requests: the calls to make (from :func:`qlora_eval.judge.plan.plan_judgments`).
        already_stored: how many of the plan's judgments were already stored (for the summary).
        budget: the spending limit; no batch starts whose estimate would cross it.
        run_id: the store run these judgments belong to.
        progress: show a tqdm progress bar.

    Raises:
        BackendError: when the judge hits an error no retry fixes; everything finished before is stored.
    """
    from tqdm import tqdm

    batches = [list(requests[i : i + judge.batch_size]) for i in range(0, len(requests), judge.batch_size)]
    counts = {"new": 0, "invalid": 0, "failed": 0, "requests": 0, "reasked": 0, "done": 0}
    cost = 0.0
    tokens = 0  # prompt + completion tokens of the stored judgments: the throughput shown in the bar
    started = time.perf_counter()
    bar = tqdm(total=len(requests), desc=f"judging ({judge.judge_id})", unit="call", disable=not progress)

    def handle(future: Future[list[JudgeOutcome]], estimate: float) -> None:
        nonlocal cost, tokens
        outcomes = future.result()  # a BackendError propagates from here
        batch_cost = sum(o.cost_usd for o in outcomes)
        budget.settle(estimate, batch_cost)
        cost += batch_cost
        for outcome in outcomes:
            _store_outcome(store, outcome, run_id, judge.judge_id)
            counts["requests"] += outcome.attempts
            counts["reasked"] += int(outcome.reasked)
            counts["done"] += 1
            if outcome.judgment is None:
                counts["failed"] += 1
            else:
                counts["new"] += 1
                counts["invalid"] += int(outcome.judgment.verdict is Verdict.INVALID)
                tokens += (outcome.judgment.prompt_tokens or 0) + (outcome.judgment.completion_tokens or 0)
        bar.update(len(outcomes))
        elapsed = time.perf_counter() - started
        postfix = {"tok_s": f"{tokens / elapsed:.0f}"} if tokens and elapsed > 0 else {}
        bar.set_postfix(**postfix, **({"usd": f"{cost:.4f}"} if cost else {}))

    stopped = False
    pending: dict[Future[list[JudgeOutcome]], float] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, judge.concurrency), thread_name_prefix="judge")
    try:
        for batch in batches:
            while len(pending) >= max(1, judge.concurrency):
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    handle(future, pending.pop(future))
            estimate = sum(judge.estimate_usd(r) for r in batch)
            if not budget.try_reserve(estimate):
                stopped = True
                log.warning(
                    "budget of $%.4f reached (spent $%.4f, in flight $%.4f): starting no new calls",
                    budget.limit_usd or 0.0,
                    budget.spent_usd,
                    budget.reserved_usd,
                )
                break
            pending[pool.submit(judge.judge_batch, batch, budget)] = estimate
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                handle(future, pending.pop(future))
    finally:
        # On an error or Ctrl-C: start nothing new, let calls in flight finish and store what they return.
        pool.shutdown(wait=True, cancel_futures=True)
        for future, estimate in list(pending.items()):
            if future.done() and not future.cancelled() and future.exception() is None:
                handle(future, estimate)
        bar.close()
    return JudgeRunSummary(
        planned=len(requests) + already_stored,
        already_stored=already_stored,
        new=counts["new"],
        invalid=counts["invalid"],
        failed=counts["failed"],
        not_started=len(requests) - counts["done"],
        requests=counts["requests"],
        reasked=counts["reasked"],
        cost_usd=cost,
        stopped_by_budget=stopped,
    )


def check_key(outcome: JudgeOutcome) -> None:
    """Make sure a judgment is stored under the key its request was planned (and looked up) with.

    The plan keys a call with the spec's settings, the judge records its own; if the two ever differ, the
    stored judgment would never be found again and every rerun would pay for the call once more.

    Raises:
        InternalError: the keys differ (a bug: the judge's settings drifted from its kind's settings).
    """
    judgment = outcome.judgment
    if judgment is not None and judgment.judgment_key != outcome.request.key:
        raise InternalError(
            f"judge {judgment.judge!r} returned a judgment whose content key {judgment.judgment_key[:12]}... differs "
            f"from its request's key {outcome.request.key[:12]}... (settings recorded: {judgment.settings}); it would "
            "be paid for again on every run. This is a bug in qlora-eval; please report it."
        )


def _store_outcome(store: Store, outcome: JudgeOutcome, run_id: int | None, judge_id: str) -> None:
    check_key(outcome)
    if outcome.judgment is not None:
        store.add_judgments([outcome.judgment], run_id=run_id)
        return
    assert outcome.error is not None  # JudgeOutcome guarantees one of the two
    # add_judge_failure reads only the identifying fields (judge, prompt, models) of this record.
    placeholder = outcome.request.judgment(judge_id, {}, Verdict.INVALID, outcome.error)
    store.add_judge_failure(outcome.request.key, placeholder, outcome.error, outcome.attempts, run_id=run_id)

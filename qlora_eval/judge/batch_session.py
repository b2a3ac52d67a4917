"""One ``--batch`` judging job: collect what ended, then submit what is neither stored nor in flight.

``qlora-eval judge --batch`` and ``tournament`` (``batch: true``) call :func:`run_batch`; ``judge
--batch-status`` calls :func:`batch_status`. Both return at once: batches run on the server (up to 24 h),
and a later run of the same command collects them and re-plans only what failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from qlora_eval.errors import ConfigError
from qlora_eval.judge.batch import (
    BatchJob,
    CollectSummary,
    SubmitSummary,
    collect,
    estimate_usd,
    reconcile,
    submit,
    without_in_flight,
)
from qlora_eval.judge.batch_api import BatchAPI, OpenAIBatchAPI
from qlora_eval.judge.kind import JudgeSpec
from qlora_eval.judge.options import JudgeOptions
from qlora_eval.judge.plan import JudgePlan
from qlora_eval.judge.pricing import Price, PriceTable, load_prices
from qlora_eval.judge.runner import JudgeRunSummary
from qlora_eval.models.openai_client import OPENAI_API_URL
from qlora_eval.store import Store

#: Builds the Batch API client for a base URL (None: OpenAI's); tests pass one bound to a fake server.
ApiFactory = Callable[[str | None], BatchAPI]


@dataclass(frozen=True)
class BatchRunSummary:
    """What a ``--batch`` run did.

    Attributes:
        collected: results collected from batches that ended (and submissions settled after a crash).
        submitted: what was submitted now (None for ``--batch-status``).
        planned: judgments the plan covers; stored: of them, now in the store; in_flight: in open batches.
    """

    collected: CollectSummary
    submitted: SubmitSummary | None
    planned: int
    stored: int
    in_flight: int

    @property
    def complete(self) -> bool:
        """Every planned judgment is stored."""
        return self.planned > 0 and self.stored == self.planned

    def to_dict(self) -> dict[str, Any]:
        c, s = self.collected, self.submitted
        return {
            "batch": True,
            "planned": self.planned,
            "judgments": self.stored,
            "in_flight": self.in_flight,
            "collected_batches": c.collected,
            "pending_batches": [
                {"batch_id": b, "status": st, "completed": done, "total": total} for b, st, done, total in c.pending
            ],
            "new": c.new,
            "invalid": c.invalid,
            "failed": c.failed,
            "unreadable_lines": c.unreadable,
            "recovered_submissions": c.recovered,
            "abandoned_submissions": c.abandoned,
            "cost_usd": round(c.cost_usd, 6),
            "submitted_batches": s.batches if s else [],
            "submitted_requests": s.submitted if s else 0,
            "unconfirmed_requests": s.unconfirmed if s else 0,
            "not_started": s.not_started if s else 0,
            "estimated_submitted_usd": round(s.estimated_usd, 6) if s else 0.0,
        }


def as_run_summary(summary: BatchRunSummary) -> JudgeRunSummary:
    """The batch run in the shape of a synchronous run's summary (for callers such as the tournament).

    Judgments still in batches (or left out by the budget) count as not started, so the run is complete only
    once every planned judgment is stored. Failures collected now were re-submitted in the same run.
    """
    c, s = summary.collected, summary.submitted
    return JudgeRunSummary(
        planned=summary.planned,
        already_stored=max(0, summary.stored - c.new),
        new=c.new,
        invalid=c.invalid,
        failed=0,
        not_started=summary.planned - summary.stored,
        requests=s.submitted if s else 0,
        reasked=0,
        cost_usd=c.cost_usd,
        stopped_by_budget=bool(s and s.not_started),
        in_flight=summary.in_flight,
    )


def batch_price(spec: JudgeSpec, table: PriceTable, options: JudgeOptions) -> Price | None:
    """The judge's Batch API price.

    Raises:
        ConfigError: the judge kind has no batch mode, or a budget is set and the table lacks the price.
    """
    if spec.kind.name != "openai":
        raise ConfigError(
            f"--batch works with openai: judges (the OpenAI Batch API), not {spec.kind.name}:; drop --batch"
        )
    price = table.get_batch(spec.target)
    if price is None and options.budget_usd is not None:
        raise ConfigError(
            f"--budget-usd with --batch needs the batch price of {spec.target!r}, which the price table "
            f"({', '.join(table.sources)}) lacks; add batch_input_per_mtok and batch_output_per_mtok to its "
            "entry in a YAML file and pass it with --prices FILE"
        )
    return price


def batch_job(spec: JudgeSpec, options: JudgeOptions) -> BatchJob:
    """Model, sampling, settings and batch price of a judge spec."""
    table = load_prices(options.prices_path)
    return BatchJob(
        judge_id=spec.judge_id,
        model=spec.target,
        temperature=options.temperature,
        max_tokens=options.max_tokens,
        settings=spec.settings(options),
        price=batch_price(spec, table, options),
    )


def default_api(options: JudgeOptions) -> ApiFactory:
    """The real Batch API client factory."""

    def make(base_url: str | None) -> BatchAPI:
        return OpenAIBatchAPI(base_url, retry=options.retry, rng=np.random.default_rng(options.seed))

    return make


def run_batch(
    store: Store,
    plan_: JudgePlan,
    *,
    spec: JudgeSpec,
    options: JudgeOptions,
    run_id: int | None = None,
    api_factory: ApiFactory | None = None,
) -> BatchRunSummary:
    """Collect ended batches of this judge's endpoint, then submit the plan's calls not stored or in flight."""
    job = batch_job(spec, options)
    table = load_prices(options.prices_path)
    api = (api_factory or default_api(options))(spec.base_url)
    summary = CollectSummary()
    try:
        reconcile(store, api, summary)
        collect(store, api, table.get_batch, summary, run_id=run_id)
        # Collecting stored verdicts the plan still lists: plan again from the store's present state.
        todo = [r for r in plan_.requests if not store.has_judgment(r.key)]
        todo, _ = without_in_flight(store, todo)
        submitted = submit(store, api, todo, job, budget_usd=options.budget_usd, run_id=run_id)
    finally:
        api.close()
    return _summary(store, plan_, summary, submitted)


def batch_status(
    store: Store, *, options: JudgeOptions, plan_: JudgePlan | None = None, api_factory: ApiFactory | None = None
) -> BatchRunSummary:
    """Poll every open submission (on whatever endpoint it went to) and store the results of ended ones."""
    table = load_prices(options.prices_path)
    make = api_factory or default_api(options)
    summary = CollectSummary()
    for endpoint in sorted({s.endpoint for s in store.batch_submissions(open_only=True)}):
        api = make(None if endpoint == OPENAI_API_URL else endpoint)
        try:
            reconcile(store, api, summary)
            collect(store, api, table.get_batch, summary)
        finally:
            api.close()
    return _summary(store, plan_, summary, None)


def estimate_batch(plan_: JudgePlan, spec: JudgeSpec, options: JudgeOptions) -> tuple[int, float, bool]:
    """(calls, estimated dollars at batch prices, whether priced) of the plan's calls not in flight."""
    job = batch_job(spec, options)
    return len(plan_.requests), estimate_usd(plan_.requests, job), job.price is not None


def _summary(
    store: Store, plan_: JudgePlan | None, collected: CollectSummary, submitted: SubmitSummary | None
) -> BatchRunSummary:
    busy = store.in_flight_keys()
    if plan_ is None:
        return BatchRunSummary(collected, submitted, 0, 0, len(busy))
    keys = [*plan_.stored_keys, *(r.key for r in plan_.requests)]
    stored = sum(store.has_judgment(k) for k in keys)
    return BatchRunSummary(collected, submitted, len(keys), stored, sum(k in busy for k in keys))

"""The ``place`` workflow: add one model to a leaderboard by judging it against a few well-chosen rivals.

A full round robin for the (N+1)-th model costs N x prompts x 2 judge calls. ``place`` fits the store's
ranking for one judge and prompt set, judges the new model against the rival nearest the middle of the
board, refits, and picks each next rival where the new model's interval is widest (see
:mod:`.placement`), stopping after ``rivals`` (K, default 3) or once its interval leaves its neighbours'.
Judging goes through the judge engine's own plan and runner, so stored verdicts are never paid for twice,
``--budget-usd`` caps the whole run, and an interrupted run resumes (its rivals count).

Usage::

    outcome = place(PlaceRequest(db=Path("qlora-eval.db"), model="guanaco-7b-v2", judge="openai:gpt-4"))
    Path("place.json").write_text(outcome.document.dumps())   # the rank document plus "placement"
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from qlora_eval import __version__
from qlora_eval.errors import ConfigError, InputError
from qlora_eval.judge.options import JudgeOptions
from qlora_eval.rating import FitOptions
from qlora_eval.types import Judgment, Prompt, utc_now
from qlora_eval.workflows.document import InputRecord, RankDocument, Ranking
from qlora_eval.workflows.placement import Placement, Played, opponents, place_model

if TYPE_CHECKING:
    from qlora_eval.judge.kind import JudgeSpec
    from qlora_eval.judge.plan import JudgePlan
    from qlora_eval.judge.session import Estimate
    from qlora_eval.rating import RankingResult
    from qlora_eval.store import Store

#: Bootstrap rounds of the refits inside the loop (the final document uses the request's rounds).
LOOP_ROUNDS = 200


@dataclass(frozen=True)
class PlaceRequest:
    """What to place and how.

    Attributes:
        db: the store (answers of the new model and the board, the board's verdicts).
        model: the new model (its answers must be stored).
        judge: the judge spec (its verdicts make the board).
        prompts: the prompt set (None: the one set the new model answered).
        rivals: K, the most rivals to judge against.
        method: ``bt`` (default) or ``elo`` for the fits.
        rounds: bootstrap rounds / orderings of the final fit (None: the method's default).
        seed: seed of the fits.
        fit: the fit options (as for ``rank``).
        options: judge options (budget, prices, concurrency, retries...).
        dry_run: plan and price only; judge nothing.
        command: the command line, recorded in the document.
    """

    db: Path
    model: str
    judge: str
    prompts: str | None = None
    rivals: int = 3
    method: str = "bt"
    rounds: int | None = None
    seed: int = 0
    fit: FitOptions = field(default_factory=FitOptions)
    options: JudgeOptions = field(default_factory=JudgeOptions)
    dry_run: bool = False
    command: str = "qlora-eval place"


@dataclass(frozen=True)
class DryRun:
    """What placing would cost: calls per possible rival and the bound for K rivals.

    Attributes:
        calls_per_rival: rival -> calls still to make against it (both orders, all prompts, minus stored).
        first_rival: the rival judged first (nearest the middle of the board).
        max_calls: calls of the K most expensive rivals (an upper bound: rivals are chosen as verdicts arrive).
        round_robin_calls: calls of a full round robin against the board.
        estimate: the price of ``max_calls`` (the K most expensive rivals' calls).
    """

    calls_per_rival: dict[str, int]
    first_rival: str
    max_calls: int
    round_robin_calls: int
    estimate: Estimate


@dataclass(frozen=True)
class PlaceOutcome:
    """A finished placement (``document`` and ``result`` None for a dry run)."""

    placement: Placement | None
    document: RankDocument | None
    result: RankingResult | None
    dry_run: DryRun | None = None


def place(request: PlaceRequest) -> PlaceOutcome:
    """Place ``request.model`` on the store's board for one judge and prompt set.

    Raises:
        ConfigError: a bad request (rivals < 1, unknown method).
        InputError: no store, no answers of the model, no board.
        ConvergenceError: a fit without a finite estimate (the message names ``--prior``).
    """
    import numpy as np

    from qlora_eval.judge.registry import parse_judge_spec
    from qlora_eval.judge.session import estimate_messages
    from qlora_eval.rating import DEFAULT_ROUNDS, RatingMethod
    from qlora_eval.store import Store
    from qlora_eval.workflows.fitting import rank_judgments, stored_answer_texts
    from qlora_eval.workflows.placement import first_rival

    if request.rivals < 1:
        raise ConfigError(f"--rivals must be at least 1, got {request.rivals}")
    if request.method not in ("bt", "elo"):
        raise ConfigError(f"--method {request.method!r}: place fits with bt or elo")
    method = RatingMethod(request.method)
    rounds = request.rounds if request.rounds is not None else DEFAULT_ROUNDS[method]
    spec = parse_judge_spec(request.judge)
    if not request.db.is_file():
        raise InputError("no store here; pass --db PATH of an existing store", source=str(request.db))
    with Store(request.db) as store:
        prompts = _prompts(store, request.model, request.prompts)
        prompt_set = prompts[0].prompt_set
        board = [s.judgment for s in store.judgments(judges=[spec.judge_id], prompt_set=prompt_set)]
        texts = stored_answer_texts(request.db, [prompt_set]) if request.fit.controls else {}

        def fit(judgments: Sequence[Judgment], rounds_: int = LOOP_ROUNDS) -> RankingResult:
            rng = np.random.default_rng(request.seed)
            return rank_judgments(
                judgments, method, max(2, min(rounds, rounds_)), rng, request.fit, answer_text=texts.get
            )

        board_models = sorted({m for j in board for m in (j.model_a, j.model_b)} - {request.model})
        per_rival = {
            rival: _pair_plan(store, spec, request.options, prompts, request.model, rival) for rival in board_models
        }
        round_robin = sum(len(p.requests) + len(p.stored_keys) + len(p.reused_keys) for p in per_rival.values())
        if request.dry_run:
            if len(board_models) < 2:
                raise InputError(
                    f"placing {request.model} needs a board of at least two other models judged by {spec.judge_id} "
                    f"on {prompt_set}, found {len(board_models)}; judge a round robin first"
                )
            played = opponents(board, request.model)
            others = [j for j in board if request.model not in (j.model_a, j.model_b)]
            first = played[0] if played else first_rival(fit(others))
            costs = sorted((len(p.requests) for r, p in per_rival.items() if r not in played), reverse=True)
            left = max(0, request.rivals - len(played))
            chosen = sorted(per_rival, key=lambda r: -len(per_rival[r].requests))[:left]
            messages = [req.messages for r in chosen for req in per_rival[r].requests]
            dry = DryRun(
                calls_per_rival={r: len(p.requests) for r, p in per_rival.items()},
                first_rival=first,
                max_calls=sum(costs[:left]),
                round_robin_calls=round_robin,
                estimate=estimate_messages(messages, spec, request.options),
            )
            return PlaceOutcome(None, None, None, dry)
        run_id = store.start_run(
            "place",
            {"model": request.model, "judge": spec.text, "prompts": prompt_set, "rivals": request.rivals},
        )
        spent = [0.0]

        def play(rival: str) -> Played:
            return _play(store, spec, request, prompts, rival, spent, run_id)

        status = "interrupted"
        try:
            judgments, placement = place_model(
                board, request.model, rivals=request.rivals, fit=fit, play=play, round_robin_calls=round_robin
            )
            status = "done" if placement.stopped != "budget" else "incomplete"
        finally:
            store.finish_run(run_id, status, {"cost_usd": spent[0]})
    result = fit(judgments, rounds)
    document = _document(request, result, judgments, placement)
    return PlaceOutcome(placement, document, result)


def _prompts(store: Store, model: str, name: str | None) -> list[Prompt]:
    if name is None:
        sets = sorted({a.prompt_set for a in store.answers(models=[model])})
        if len(sets) != 1:
            found = ", ".join(sets) if sets else "none"
            raise ConfigError(
                f"cannot tell which prompt set to place {model} on (its answers are in: {found}); pass --prompts NAME"
                + ("; generate its answers first (qlora-eval generate)" if not sets else "")
            )
        name = sets[0]
    prompts = store.prompts(name)
    if not prompts:
        raise InputError(f"the store has no prompts of set {name!r}; generate answers first (qlora-eval generate)")
    return prompts


def _pair_plan(
    store: Store, spec: JudgeSpec, options: JudgeOptions, prompts: list[Prompt], model: str, rival: str
) -> JudgePlan:
    """The calls of ``model`` against ``rival`` on every prompt in both orders (stored ones are not planned)."""
    from qlora_eval.judge.plan import latest_answers
    from qlora_eval.judge.session import plan

    answers = latest_answers(store.answers(models=[model, rival], prompt_set=prompts[0].prompt_set), prompts)
    return plan(store, spec=spec, options=options, prompts=prompts, answers=answers, models=[model, rival])


def _play(
    store: Store,
    spec: JudgeSpec,
    request: PlaceRequest,
    prompts: list[Prompt],
    rival: str,
    spent: list[float],
    run_id: int,
) -> Played:
    """Judge ``request.model`` against ``rival`` on every prompt in both orders (under what is left of the budget)."""
    from qlora_eval.judge.session import judge

    options = request.options
    if options.budget_usd is not None:
        options = dataclasses.replace(options, budget_usd=max(0.0, options.budget_usd - spent[0]))
    job = _pair_plan(store, spec, options, prompts, request.model, rival)
    summary = judge(store, job, spec=spec, options=options, run_id=run_id, progress=False)
    spent[0] += summary.cost_usd
    pair = store.judgments(judges=[spec.judge_id], models=[request.model, rival], prompt_set=prompts[0].prompt_set)
    return Played(tuple(s.judgment for s in pair), summary.requests, stopped=summary.stopped_by_budget)


def _document(
    request: PlaceRequest, result: RankingResult, judgments: Sequence[Judgment], placement: Placement
) -> RankDocument:
    import numpy as np

    from qlora_eval.interchange.base import sha256_file
    from qlora_eval.workflows.diagnostics import judge_diagnostics
    from qlora_eval.workflows.rank import verdicts_sha256

    return RankDocument(
        ranking=Ranking.from_result(result, seed=request.seed),
        diagnostics=judge_diagnostics(result, judgments, seed=request.seed),
        judges=tuple(sorted({j.judge for j in judgments})),
        prompt_sets=tuple(sorted({j.prompt_set for j in judgments})),
        inputs=(InputRecord(str(request.db), sha256_file(request.db), len(judgments)),),
        data_sha256=verdicts_sha256(judgments),
        command=request.command,
        qlora_eval_version=__version__,
        python_version=platform.python_version(),
        numpy_version=np.__version__,
        created_at=utc_now(),
        placement=placement.to_json(),
    )

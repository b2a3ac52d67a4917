"""The tournament workflow: generate missing answers, judge every pair in both orders, rate, report.

Every step is resumable: answers and judgments already stored are reused, so re-running a finished
tournament generates nothing, calls no judge, and only re-renders the ratings and the report.

Usage::

    from qlora_eval.config import load_tournament_config
    from qlora_eval.workflows.tournament import run_tournament

    result = run_tournament(load_tournament_config("tournaments/demo.yaml"), progress=False)
    print(result.document.elo.models[0].model)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qlora_eval.config import TournamentConfig
from qlora_eval.errors import ConfigError
from qlora_eval.judge.openai_judge import RetryPolicy
from qlora_eval.judge.runner import JudgeRunSummary
from qlora_eval.judge.session import JudgeOptions
from qlora_eval.models.spec import ModelSpec, parse_model_spec
from qlora_eval.types import Answer, GenerationSettings
from qlora_eval.workflows.tournament_document import TournamentDocument

if TYPE_CHECKING:
    from qlora_eval.judge.kind import JudgeSpec
    from qlora_eval.judge.plan import JudgePlan
    from qlora_eval.judge.session import Estimate

#: Called with the judging plan's estimate before any judge call is made (the CLI prints it).
EstimateCallback = Callable[["Estimate", "JudgePlan", "JudgeSpec"], None]


@dataclass(frozen=True)
class TournamentResult:
    """What a tournament run did and produced.

    Attributes:
        generated: answers generated in this run.
        reused_answers: answers found in the store.
        judging: the judge run's summary.
        document: what ``--json`` holds (also written to ``config.json``); None when nothing was rated because
            every judgment still waits in Batch API batches (see :attr:`waiting`).
        seconds: wall time of the run.
    """

    generated: int
    reused_answers: int
    judging: JudgeRunSummary
    document: TournamentDocument | None
    seconds: float

    @property
    def waiting(self) -> bool:
        """Nothing to rate yet: no judgment is stored and some wait in Batch API batches (run again later)."""
        return self.document is None

    @property
    def complete(self) -> bool:
        """Every planned judgment is stored (none failed, none left unstarted by the budget)."""
        return self.judging.complete


def resolve_models(config: TournamentConfig) -> list[tuple[ModelSpec, GenerationSettings]]:
    """Parse every contestant's spec; errors name the config file and field.

    Raises:
        ConfigError: a bad spec, or two contestants with one display name.
    """
    resolved = []
    for contestant in config.models:
        try:
            spec = parse_model_spec(contestant.spec)
        except ConfigError as exc:
            raise ConfigError(f"field {contestant.where!r}: {exc}", source=config.source) from exc
        resolved.append((spec, contestant.sampling))
    names = [spec.name for spec, _ in resolved]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(
                f"field 'models': two contestants share the display name {name!r}; give one a '?name=...' option",
                source=config.source,
            )
    return resolved


def judge_spec_of(config: TournamentConfig) -> JudgeSpec:
    """The config's judge spec, parsed by the judge registry (errors name the file and field)."""
    from qlora_eval.judge.spec import parse_judge_spec

    try:
        return parse_judge_spec(config.judge.spec)
    except ConfigError as exc:
        raise ConfigError(f"field 'judge.spec': {exc}", source=config.source) from exc


def judge_options(
    config: TournamentConfig,
    *,
    prices_path: Path | None = None,
    max_attempts: int | None = None,
    timeout_s: float | None = None,
) -> JudgeOptions:
    """The judge options of a tournament: the config's, with the retry limits and price table given."""
    base = RetryPolicy()
    return JudgeOptions(
        temperature=config.judge.temperature,
        max_tokens=config.judge.max_tokens,
        concurrency=config.concurrency,
        budget_usd=config.budget_usd,
        prices_path=prices_path,
        retry=RetryPolicy(
            max_attempts=max_attempts if max_attempts is not None else base.max_attempts,
            timeout_s=timeout_s if timeout_s is not None else base.timeout_s,
        ),
        seed=config.seed,
        pairs=config.pairs,
        batch=config.judge.batch,
        judge_templates=config.judge.templates,
        data_dir=config.prompts.data_dir,
        reuse_imported=config.judge.reuse_imported,
        retry_invalid=config.judge.retry_invalid,
        template_dir=config.judge.template_dir,
        local_batch_size=config.judge.local_batch_size,
    )


def config_record(config: TournamentConfig) -> dict[str, Any]:
    """The config as recorded in the store's run and in the JSON document."""
    return {
        "name": config.name,
        "source": config.source,
        "models": [{"spec": m.spec, "sampling": m.sampling.to_dict()} for m in config.models],
        "prompts": {"name": config.prompts.name, "limit": config.prompts.limit},
        "judge": {
            "spec": config.judge.spec,
            "temperature": config.judge.temperature,
            "max_tokens": config.judge.max_tokens,
        },
        "pairs": config.pairs,
        "rounds": config.rounds,
        "seed": config.seed,
    }


def run_tournament(
    config: TournamentConfig,
    *,
    options: JudgeOptions | None = None,
    loader: Callable[[ModelSpec], Any] | None = None,
    progress: bool = True,
    command: str = "qlora-eval tournament",
    on_estimate: EstimateCallback | None = None,
) -> TournamentResult:
    """Generate, judge, rate and report one tournament; writes ``config.json`` and ``config.html``.

    Args:
        config: the tournament.
        options: judge options (default: from the config).
        loader: turns a model spec into a running model (tests pass a stand-in; default ``load_chat_model``).
        progress: let the engines show progress bars.
        command: the command line, recorded in the report.
        on_estimate: called with the estimate when there are judge calls to make, before they are made.

    When every judgment of the tournament is still in Batch API batches (``judge: {batch: true}``, first run),
    nothing is rated or written: the result's ``document`` is None and ``judging.in_flight`` says how many
    wait; running the tournament again collects the ended batches and rates.

    Raises:
        ConfigError: a bad config, or nothing to rate (every judge call failed).
    """
    from qlora_eval.generate.runner import generate_answers
    from qlora_eval.judge import session
    from qlora_eval.judge.plan import latest_answers
    from qlora_eval.models.factory import load_chat_model
    from qlora_eval.prompts import load_prompt_set
    from qlora_eval.store import Store
    from qlora_eval.workflows.tournament_report import TournamentData, rate, report_html

    start = time.perf_counter()
    contestants = resolve_models(config)
    judge_spec = judge_spec_of(config)
    options = options or judge_options(config)
    prompt_set = load_prompt_set(config.prompts.name, data_dir=config.prompts.data_dir).limit(config.prompts.limit)
    for path in (config.db, config.html, config.json):
        path.parent.mkdir(parents=True, exist_ok=True)
    with Store(config.db) as store:
        run_id = store.start_run("tournament", config_record(config))
        status = "failed"
        generated = reused = 0
        try:
            answers: dict[tuple[str, str], Answer] = {}
            for spec, settings in contestants:
                report = generate_answers(
                    store,
                    [spec],
                    prompt_set,
                    settings,
                    batch_size=config.batch_size,
                    loader=loader or load_chat_model,
                    progress=progress,
                )
                generated += report.generated
                reused += report.reused
                answers.update(latest_answers(report.answers, prompt_set.prompts))
            names = [spec.name for spec, _ in contestants]
            plan = session.plan(
                store, spec=judge_spec, options=options, prompts=prompt_set.prompts, answers=answers, models=names
            )
            if plan.requests and on_estimate is not None:
                on_estimate(session.estimate(plan, judge_spec, options), plan, judge_spec)
            summary = session.judge(store, plan, spec=judge_spec, options=options, run_id=run_id, progress=progress)
            keys = set(plan.stored_keys) | set(plan.reused_keys) | {r.key for r in plan.requests}
            stored = store.judgments(models=names, prompt_set=prompt_set.name)
            data = TournamentData(
                config=config,
                judge=judge_spec,
                judgments=tuple(s.judgment for s in stored if s.key in keys),
                other_judges=tuple(s.judgment for s in stored if s.judgment.judge != judge_spec.judge_id),
                answers=answers,
                prompts=tuple(prompt_set.prompts),
                summary=summary,
                generated=generated,
                reused=reused,
                command=command,
                record=config_record(config),
                template_dir=options.template_dir,
                template_set=session.templates_for(options),
            )
            if not data.judgments and summary.in_flight:
                status = "waiting"  # the batches are collected by the next run; there is nothing to rate yet
                return TournamentResult(generated, reused, summary, None, time.perf_counter() - start)
            rated = rate(data)
            html = report_html(data, rated)
            status = "done" if summary.complete else "incomplete"
        finally:
            store.finish_run(run_id, status, {"generated": generated, "reused_answers": reused})
    config.json.write_text(rated.document.dumps(), encoding="utf-8")
    config.html.write_text(html, encoding="utf-8")
    return TournamentResult(generated, reused, summary, rated.document, time.perf_counter() - start)


@dataclass(frozen=True)
class DryRun:
    """What a tournament would do, before anything is generated or paid for.

    Attributes:
        name: the tournament.
        models: number of contestants.
        prompts: number of prompts.
        prompt_set: the prompt set's name.
        pairs: model pairs that meet.
        calls: judge calls at most (pairs x 2 orders x prompts; stored ones are not paid again).
        judge_id: the judge.
        judge_target: the judge's model (for the price-table message).
        runs_locally: the judge is a local model (free).
        estimate: the upper cost estimate (answers at ``max_new_tokens``, replies at ``max_tokens``).
        reused: calls that imported verdicts of ``judge.reuse_imported`` stand in for (not in ``estimate``).
    """

    name: str
    models: int
    prompts: int
    prompt_set: str
    pairs: int
    calls: int
    judge_id: str
    judge_target: str
    runs_locally: bool
    estimate: Estimate
    reused: int = 0


def dry_run(config: TournamentConfig, options: JudgeOptions) -> DryRun:
    """What the tournament would generate and judge, with the judge engine's cost estimate.

    Answers that are not generated yet are assumed to be ``max_new_tokens`` long (4 characters a token).
    """
    from qlora_eval.judge.plan import model_pairs
    from qlora_eval.judge.session import estimate_messages, templates_for
    from qlora_eval.prompts import load_prompt_set

    contestants = resolve_models(config)
    spec = judge_spec_of(config)
    prompt_set = load_prompt_set(config.prompts.name, data_dir=config.prompts.data_dir).limit(config.prompts.limit)
    pairs = model_pairs([s.name for s, _ in contestants], options.pairs)
    templates = templates_for(options)
    placeholder = "x" * (4 * max(settings.max_new_tokens for _, settings in contestants))
    one_order = [templates.for_prompt(p).render_prompt(p, placeholder, placeholder) for p in prompt_set.prompts]
    calls = one_order * (len(pairs) * 2)  # every pair in both orders renders the same placeholder text
    reused = _reusable_calls(config, options, contestants, prompt_set.prompts)
    to_make = calls[reused:]  # every placeholder call costs the same: drop as many as reuse covers
    return DryRun(
        name=config.name,
        models=len(contestants),
        prompts=len(prompt_set),
        prompt_set=prompt_set.name,
        pairs=len(pairs),
        calls=len(calls),
        judge_id=spec.judge_id,
        judge_target=spec.target,
        runs_locally=spec.kind.runs_locally,
        estimate=estimate_messages(to_make, spec, options),
        reused=reused,
    )


def _reusable_calls(config: TournamentConfig, options: JudgeOptions, contestants: Any, prompts: Any) -> int:
    """How many of the dry run's calls imported verdicts (``judge.reuse_imported``) in the store stand in for.

    The answers judged are the ones the run would generate (or find stored) under each contestant's spec and
    settings, so a verdict counts only if it covers those answers (:func:`qlora_eval.judge.plan.reused_key`).
    """
    from qlora_eval.judge.plan import model_pairs, reusable_verdicts, reused_key
    from qlora_eval.store import Store

    if options.reuse_imported is None or not Path(config.db).is_file():
        return 0
    names = [spec.name for spec, _ in contestants]
    with Store(config.db) as store:
        stored = store.judgments(judges=[options.reuse_imported], models=names, prompt_set=config.prompts.name)
    index = reusable_verdicts([(s.key, s.judgment) for s in stored])
    # The text is unknown before generation; only the answer key and the model spec decide reuse.
    planned = {
        (spec.name, p.prompt_id): Answer(
            spec.name, spec.text, p.prompt_set, p.prompt_id, p.content_hash, "", settings.to_dict()
        )
        for spec, settings in contestants
        for p in prompts
    }
    return sum(
        reused_key(index, p, planned[(a, p.prompt_id)], planned[(b, p.prompt_id)]) is not None
        for p in prompts
        for first, second in model_pairs(names, options.pairs)
        for a, b in ((first, second), (second, first))
    )

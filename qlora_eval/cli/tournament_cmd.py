"""``qlora-eval tournament``: generate missing answers, judge every pair in both orders, rate, report.

Examples::

    qlora-eval tournament --config tournaments/demo.yaml          # offline, no API key
    qlora-eval tournament --models smollm2-135m 'smollm2-135m?bits=4&name=smollm2-nf4' --prompts demo \\
        --judge local:smollm2-135m --db reports/mine.db --html reports/mine.html

Every step is resumable: answers and judgments already stored are reused, so re-running a finished
tournament generates nothing, calls no judge, and only re-renders the ratings and the report.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qlora_eval import __version__
from qlora_eval.cli.judge_cmd import add_judge_options, format_estimate
from qlora_eval.config import Contestant, JudgeConfig, PromptsConfig, TournamentConfig, load_tournament_config
from qlora_eval.errors import ConfigError, ConvergenceError
from qlora_eval.judge.openai_judge import RetryPolicy
from qlora_eval.judge.runner import JudgeRunSummary
from qlora_eval.judge.session import JudgeOptions
from qlora_eval.judge.spec import DEFAULT_JUDGE, JudgeKind, JudgeSpec, parse_judge_spec
from qlora_eval.models.spec import ModelSpec, parse_model_spec
from qlora_eval.types import Answer, GenerationSettings, Judgment, utc_now

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, help="tournament YAML (e.g. tournaments/demo.yaml)")
    parser.add_argument("--models", nargs="+", default=None, metavar="SPEC", help="contestants (replace the config's)")
    parser.add_argument("--prompts", default=None, help="prompt set name or file (replaces the config's)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding the vicuna/oa prompt files")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="answer length limit for every model")
    parser.add_argument("--db", type=Path, default=None, help="the store (default from the config, else qlora-eval.db)")
    parser.add_argument("--html", type=Path, default=None, help="write the HTML report here")
    parser.add_argument("--json", type=Path, default=None, help="write the rankings as JSON here")
    parser.add_argument("--rounds", type=int, default=None, help="Elo orderings and BT bootstrap rounds")
    parser.add_argument("--seed", type=int, default=None, help="seed of ratings and retry jitter")
    add_judge_options(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> TournamentConfig:
    """The config file (if any) with the command-line options on top."""
    if args.config is not None:
        config = load_tournament_config(args.config)
    elif args.models is None:
        raise ConfigError(
            "give --config tournaments/NAME.yaml or --models SPEC SPEC ... (try: qlora-eval tournament "
            "--config tournaments/demo.yaml)"
        )
    else:
        config = TournamentConfig(
            models=tuple(Contestant(m, GenerationSettings(), f"--models[{i}]") for i, m in enumerate(args.models)),
            prompts=PromptsConfig(name="demo"),
            judge=JudgeConfig(spec=DEFAULT_JUDGE),
        )
    changes: dict[str, Any] = {}
    if args.models is not None and args.config is not None:
        changes["models"] = tuple(Contestant(m, config.sampling, f"--models[{i}]") for i, m in enumerate(args.models))
    if args.prompts is not None or args.limit is not None or args.data_dir is not None:
        changes["prompts"] = PromptsConfig(
            name=args.prompts or config.prompts.name,
            data_dir=args.data_dir or config.prompts.data_dir,
            limit=args.limit if args.limit is not None else config.prompts.limit,
        )
    if args.max_new_tokens is not None:
        models = changes.get("models", config.models)
        changes["models"] = tuple(
            Contestant(m.spec, _with(m.sampling, max_new_tokens=args.max_new_tokens), m.where) for m in models
        )
    judge = config.judge
    if args.judge is not None or args.temperature is not None or args.max_tokens is not None:
        changes["judge"] = JudgeConfig(
            spec=args.judge or judge.spec,
            temperature=args.temperature if args.temperature is not None else judge.temperature,
            max_tokens=args.max_tokens if args.max_tokens is not None else judge.max_tokens,
        )
    for key in ("db", "html", "json", "rounds", "seed", "concurrency", "budget_usd", "pairs"):
        value = getattr(args, key)
        if value is not None:
            changes[key] = value
    return config.with_overrides(**changes) if changes else config


def _with(settings: GenerationSettings, **changes: Any) -> GenerationSettings:
    return GenerationSettings(**{**settings.to_dict(), **changes})


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


def judge_options(config: TournamentConfig, args: argparse.Namespace | None = None) -> JudgeOptions:
    base = RetryPolicy()
    max_attempts = getattr(args, "max_attempts", None)
    timeout_s = getattr(args, "timeout_s", None)
    return JudgeOptions(
        temperature=config.judge.temperature,
        max_tokens=config.judge.max_tokens,
        concurrency=config.concurrency,
        budget_usd=config.budget_usd,
        prices_path=getattr(args, "prices", None),
        retry=RetryPolicy(
            max_attempts=max_attempts if max_attempts is not None else base.max_attempts,
            timeout_s=timeout_s if timeout_s is not None else base.timeout_s,
        ),
        seed=config.seed,
        pairs=config.pairs,
    )


@dataclass(frozen=True)
class TournamentResult:
    """What a tournament run did and produced."""

    generated: int
    reused_answers: int
    judging: JudgeRunSummary
    document: dict[str, Any]
    seconds: float


def run_tournament(
    config: TournamentConfig,
    *,
    options: JudgeOptions | None = None,
    loader: Callable[[ModelSpec], Any] | None = None,
    progress: bool = True,
    command: str = "qlora-eval tournament",
) -> TournamentResult:
    """Generate, judge, rate and report one tournament.

    Args:
        config: the tournament.
        options: judge options (default: from the config).
        loader: turns a model spec into a running model (tests pass a stand-in; default ``load_chat_model``).
        progress: show progress bars.
        command: the command line, recorded in the report.
    """
    import numpy as np

    from qlora_eval.generate.runner import generate_answers
    from qlora_eval.judge import session
    from qlora_eval.judge.plan import latest_answers
    from qlora_eval.models.factory import load_chat_model
    from qlora_eval.prompts import load_prompt_set
    from qlora_eval.store import Store

    start = time.perf_counter()
    contestants = resolve_models(config)
    judge_spec = _judge_spec(config)
    options = options or judge_options(config)
    prompt_set = load_prompt_set(config.prompts.name, data_dir=config.prompts.data_dir).limit(config.prompts.limit)
    for path in (config.db, config.html, config.json):
        path.parent.mkdir(parents=True, exist_ok=True)
    with Store(config.db) as store:
        run_id = store.start_run("tournament", _config_record(config))
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
            if plan.requests:
                print(format_estimate(session.estimate(plan, judge_spec, options), plan, judge_spec), file=sys.stderr)
            summary = session.judge(store, plan, spec=judge_spec, options=options, run_id=run_id, progress=progress)
            keys = set(plan.stored_keys) | {r.key for r in plan.requests}
            judgments = [s.judgment for s in store.judgments(models=names, prompt_set=prompt_set.name) if s.key in keys]
            others = [
                s.judgment
                for s in store.judgments(models=names, prompt_set=prompt_set.name)
                if s.judgment.judge != judge_spec.judge_id
            ]
            lengths = {a.answer_key: len(a.text) for a in answers.values()}
            document, html = _rate_and_report(
                config,
                judge_spec,
                judgments,
                others,
                lengths,
                answers,
                prompt_set.prompts,
                summary,
                generated=generated,
                reused=reused,
                rng=np.random.default_rng(config.seed),
                command=command,
                db_path=config.db,
                options_template_dir=options.template_dir,
            )
            status = "done" if summary.failed == 0 and summary.not_started == 0 else "incomplete"
        finally:
            store.finish_run(run_id, status, {"generated": generated, "reused_answers": reused})
    config.json.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    config.html.write_text(html, encoding="utf-8")
    return TournamentResult(generated, reused, summary, document, time.perf_counter() - start)


def _judge_spec(config: TournamentConfig) -> JudgeSpec:
    try:
        return parse_judge_spec(config.judge.spec)
    except ConfigError as exc:
        raise ConfigError(f"field 'judge.spec': {exc}", source=config.source) from exc


def _config_record(config: TournamentConfig) -> dict[str, Any]:
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


def _rank(battles: Sequence[Any], method: Any, rounds: int, rng: Any, lengths: Any) -> tuple[Any, str | None]:
    """Rank; a BT fit without a finite maximum (a model never lost) is refitted with one virtual game per pair."""
    from qlora_eval.rating import RatingMethod, rank_battles

    try:
        return rank_battles(battles, method, rounds, rng, answer_lengths=lengths), None
    except ConvergenceError as exc:
        if method is not RatingMethod.BT:
            raise
        note = f"plain Bradley-Terry has no finite estimate ({exc}); fitted with prior=1 (one virtual tie per pair)"
        return rank_battles(battles, method, rounds, rng, answer_lengths=lengths, prior=1.0), note


def _rate_and_report(
    config: TournamentConfig,
    judge_spec: JudgeSpec,
    judgments: list[Judgment],
    other_judges: list[Judgment],
    lengths: dict[str, int],
    answers: dict[tuple[str, str], Answer],
    prompts: Sequence[Any],
    summary: JudgeRunSummary,
    *,
    generated: int,
    reused: int,
    rng: Any,
    command: str,
    db_path: Path,
    options_template_dir: Path | None,
) -> tuple[dict[str, Any], str]:
    import numpy as np

    from qlora_eval.cli.diagnostics import diagnostics_document
    from qlora_eval.interchange.base import sha256_file
    from qlora_eval.judge.diagnostics import answer_lengths
    from qlora_eval.rating import RatingMethod
    from qlora_eval.report import ReportData, RunMetadata, build_report
    from qlora_eval.report.data import InputFile

    if not judgments:
        raise ConfigError("no judgments to rate: every judge call failed or the budget allowed none; run again")
    battles = [j.to_battle() for j in judgments]
    length_pair = answer_lengths(judgments, lengths.get)
    elo, _ = _rank(battles, RatingMethod.ELO, config.rounds, rng, length_pair)
    bt, bt_note = _rank(battles, RatingMethod.BT, config.rounds, rng, length_pair)
    diagnostics = {
        "judge": judge_spec.judge_id,
        **diagnostics_document(elo, judgments + other_judges, seed=config.seed),
    }
    agreements = diagnostics["agreement"]
    document: dict[str, Any] = {
        "tournament": config.name,
        "config": _config_record(config),
        "judge": judge_spec.judge_id,
        "prompt_set": prompts[0].prompt_set,
        "prompts": len(prompts),
        "elo": {**elo.to_json_dict(), "seed": config.seed},
        "bt": {**bt.to_json_dict(), "seed": config.seed, "note": bt_note},
        "diagnostics": diagnostics,
        "generation": {"generated": generated, "reused": reused},
        "judging": summary.to_dict(),
        "qlora_eval_version": __version__,
        "python_version": platform.python_version(),
        "created_at": utc_now(),
    }
    from qlora_eval.cli.rank_cmd import stored_mmlu_sections
    from qlora_eval.judge.templates import load_templates
    from qlora_eval.report.tournament import TemplateInfo, battles_section, judge_section, ranking_table_section

    shipped = {t.sha256: t for t in load_templates(options_template_dir).templates.values()}
    used = sorted({j.template_hash for j in judgments})
    templates = [TemplateInfo(shipped[h].name, shipped[h].version, h) for h in used if h in shipped]
    models = [r.model for r in elo.ratings]
    sections = (
        judge_section(
            judge_id=judge_spec.judge_id,
            settings=judgments[0].settings,
            templates=templates,
            judging=summary.to_dict() | {"judgments": len(judgments)},
            length_preference=diagnostics["length_preference"],
            agreements=agreements,
            local=judge_spec.kind is JudgeKind.LOCAL,
            position_bias=diagnostics["position_bias"],
        ),
        ranking_table_section(
            "Bradley-Terry ratings",
            bt,
            note=bt_note,
            intro=f"The same verdicts fitted by Bradley-Terry (maximum likelihood, {bt.rounds:,} bootstrap rounds "
            "over prompts for the interval). Agreement with the Elo ranking above is a consistency check.",
        ),
        battles_section(prompts, answers, judgments, models),
        *stored_mmlu_sections(db_path, models),  # MMLU results of these models, when the store has any
    )
    metadata = RunMetadata(
        created_at=document["created_at"],
        seed=config.seed,
        command=command,
        judges=(judge_spec.judge_id,),
        prompt_sets=(prompts[0].prompt_set,),
        inputs=(InputFile(str(db_path), sha256_file(db_path), len(judgments)),),
        versions={"qlora-eval": __version__, "python": platform.python_version(), "numpy": np.__version__},
        extra={"tournament": config.name, "config": config.source or "(command line)"},
    )
    subtitle = (
        f"{len(models)} models · {len(prompts)} prompts of the {prompts[0].prompt_set} set · judged by "
        f"{judge_spec.judge_id} in both orders"
    )
    html = build_report(ReportData(config.name, elo, metadata, sections=sections, subtitle=subtitle))
    return document, html


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    options = judge_options(config, args)
    if args.dry_run:
        return _dry_run(config, options)
    result = run_tournament(config, options=options, progress=not args.no_progress, command=_command_line())
    print(_leaderboard(result.document))
    print(f"wrote {config.html} and {config.json} ({result.seconds:.0f} s)", file=sys.stderr)
    return 0 if result.judging.failed == 0 and result.judging.not_started == 0 else 1


def _command_line() -> str:
    import shlex

    return shlex.join(["qlora-eval", *sys.argv[1:]]) if sys.argv else "qlora-eval tournament"


def _leaderboard(document: dict[str, Any]) -> str:
    from qlora_eval.cli.rank_cmd import format_leaderboard

    return format_leaderboard(document["elo"]) + "\n\n" + format_leaderboard(document["bt"])


def _dry_run(config: TournamentConfig, options: JudgeOptions) -> int:
    """Print what the tournament would generate and judge, and (for a paid judge) an upper cost estimate.

    Answers that are not generated yet are assumed to be ``max_new_tokens`` long (4 characters a token).
    """
    from qlora_eval.judge.openai_judge import estimate_call_usd
    from qlora_eval.judge.plan import model_pairs
    from qlora_eval.judge.session import price_for
    from qlora_eval.judge.templates import load_templates
    from qlora_eval.prompts import load_prompt_set

    contestants = resolve_models(config)
    spec = _judge_spec(config)
    prompt_set = load_prompt_set(config.prompts.name, data_dir=config.prompts.data_dir).limit(config.prompts.limit)
    pairs = model_pairs([s.name for s, _ in contestants], options.pairs)
    calls = len(prompt_set) * len(pairs) * 2
    templates = load_templates(options.template_dir)
    longest = max(settings.max_new_tokens for _, settings in contestants)
    placeholder = "x" * (4 * longest)
    price, _ = price_for(spec, options)
    cost = (
        sum(
            estimate_call_usd(
                price, templates.for_prompt(p).render(p.question, placeholder, placeholder), options.max_tokens
            )
            for p in prompt_set.prompts
        )
        * len(pairs)
        * 2
    )
    print(
        f"tournament {config.name}: {len(contestants)} models x {len(prompt_set)} prompts of {prompt_set.name} = "
        f"{len(contestants) * len(prompt_set)} answers (stored ones are reused); {len(pairs)} pairs x 2 orders = "
        f"{calls} judge calls by {spec.judge_id} at most (stored ones are not paid again)"
    )
    if spec.kind is JudgeKind.LOCAL:
        print("estimated cost: $0 (local judge)")
    elif price is None:
        print(f"estimated cost: unknown: {spec.target!r} has no entry in the price table (--prices FILE)")
    else:
        print(f"estimated cost: at most ${cost:.4f} (answers at max_new_tokens, replies at --max-tokens)")
    return 0

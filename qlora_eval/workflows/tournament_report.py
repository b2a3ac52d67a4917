"""The rating and report step of a tournament: its judgments -> Elo and BT rankings -> document and HTML."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qlora_eval import __version__
from qlora_eval.config import TournamentConfig
from qlora_eval.errors import ConfigError
from qlora_eval.judge.runner import JudgeRunSummary
from qlora_eval.types import Answer, Judgment, Prompt, utc_now
from qlora_eval.workflows.document import Ranking
from qlora_eval.workflows.tournament_document import TournamentDocument

if TYPE_CHECKING:
    from qlora_eval.judge.kind import JudgeSpec
    from qlora_eval.judge.templates import TemplateSet
    from qlora_eval.rating import RankingResult


@dataclass(frozen=True)
class TournamentData:
    """Everything the rating and report step reads.

    Attributes:
        config: the tournament.
        judge: the tournament's judge.
        judgments: this tournament's judgments (the plan's keys).
        other_judges: stored judgments of the same models and prompts by other judges (for agreement).
        answers: (model, prompt_id) -> the answer judged.
        prompts: the prompts.
        summary: the judge run's summary.
        generated: answers generated in this run.
        reused: answers reused from the store.
        command: the command line.
        record: the config as recorded (``config`` key of the JSON).
        template_dir: the judge templates' folder (None: the shipped ones).
        template_set: the judge templates the run used (None: those of ``template_dir``).
    """

    config: TournamentConfig
    judge: JudgeSpec
    judgments: tuple[Judgment, ...]
    other_judges: tuple[Judgment, ...]
    answers: Mapping[tuple[str, str], Answer]
    prompts: tuple[Prompt, ...]
    summary: JudgeRunSummary
    generated: int
    reused: int
    command: str
    record: Mapping[str, Any]
    template_dir: Path | None = None
    template_set: TemplateSet | None = None


@dataclass(frozen=True)
class Rated:
    """The tournament's rankings: the document, and the full results the report plots."""

    document: TournamentDocument
    elo: RankingResult
    bt: RankingResult


def rate(data: TournamentData) -> Rated:
    """Elo and Bradley-Terry rankings of the tournament's judgments, with the judge diagnostics.

    Raises:
        ConfigError: no judgments to rate.
    """
    import numpy as np

    from qlora_eval.judge.diagnostics import answer_lengths
    from qlora_eval.models.spec import parse_model_spec
    from qlora_eval.rating import RatingMethod
    from qlora_eval.workflows.diagnostics import judge_diagnostics
    from qlora_eval.workflows.findings import precision_findings
    from qlora_eval.workflows.fitting import fit_from_config, rank_with_fallback

    config = data.config
    if not data.judgments:
        raise ConfigError("no judgments to rate: every judge call failed or the budget allowed none; run again")
    judgments = list(data.judgments)
    lengths = {a.answer_key: len(a.text) for a in data.answers.values()}
    texts = {a.answer_key: a.text for a in data.answers.values()}
    length_pair = answer_lengths(judgments, lengths.get)
    fit = fit_from_config(config.rating)  # the YAML's rating: mapping with the command line's fit flags on top
    rng = np.random.default_rng(config.seed)  # one generator for both fits, in this order
    elo, _ = rank_with_fallback(
        judgments, RatingMethod.ELO, config.rounds, rng, fit, answer_text=texts.get, lengths=length_pair
    )
    bt, bt_note = rank_with_fallback(
        judgments, RatingMethod.BT, config.rounds, rng, fit, answer_text=texts.get, lengths=length_pair
    )
    diagnostics = judge_diagnostics(
        elo, judgments + list(data.other_judges), seed=config.seed, judge=data.judge.judge_id
    )
    document = TournamentDocument(
        tournament=config.name,
        config=data.record,
        judge=data.judge.judge_id,
        prompt_set=data.prompts[0].prompt_set,
        prompts=len(data.prompts),
        elo=Ranking.from_result(elo, seed=config.seed),
        bt=Ranking.from_result(bt, seed=config.seed),
        bt_note=bt_note,
        diagnostics=diagnostics,
        generation={"generated": data.generated, "reused": data.reused},
        judging=data.summary.to_dict(),
        qlora_eval_version=__version__,
        python_version=platform.python_version(),
        created_at=utc_now(),
        # Bootstrap rounds over prompts (BT), not Elo orderings: the interval of a difference must reflect prompts.
        findings=tuple(
            f.to_json() for f in precision_findings(bt, [(parse_model_spec(m.spec), m.sampling) for m in config.models])
        ),
    )
    return Rated(document, elo, bt)


def report_html(data: TournamentData, rated: Rated) -> str:
    """The tournament's HTML report (imports the report, and with it matplotlib)."""
    import numpy as np

    from qlora_eval.interchange.base import sha256_file
    from qlora_eval.judge.templates import load_templates
    from qlora_eval.report import ReportData, RunMetadata, build_report
    from qlora_eval.report.data import InputFile
    from qlora_eval.report.tournament import TemplateInfo, battles_section, judge_section, ranking_table_section
    from qlora_eval.workflows.rank import stored_mmlu_sections

    config, document, judgments = data.config, rated.document, data.judgments
    diagnostics = document.diagnostics
    used_set = data.template_set or load_templates(data.template_dir)
    shipped = {t.sha256: t for t in used_set.all_templates()}
    used = sorted({j.template_hash for j in judgments})
    templates = [TemplateInfo(shipped[h].name, shipped[h].version, h) for h in used if h in shipped]
    models = [r.model for r in rated.elo.ratings]
    judge_id = data.judge.judge_id
    sections = (
        judge_section(
            judge_id=judge_id,
            settings=judgments[0].settings,
            templates=templates,
            judging=data.summary.to_dict() | {"judgments": len(judgments)},
            length_preference=diagnostics.length_preference,
            agreements=diagnostics.agreement,
            local=data.judge.kind.runs_locally,
            position_bias=diagnostics.position_bias,
            note=data.judge.kind.report_note,
        ),
        ranking_table_section(
            "Bradley-Terry ratings",
            rated.bt,
            note=document.bt_note,
            intro=f"The same verdicts fitted by Bradley-Terry (maximum likelihood, {rated.bt.rounds:,} bootstrap "
            "rounds over prompts for the interval). Agreement with the Elo ranking above is a consistency check.",
        ),
        battles_section(data.prompts, data.answers, judgments, models),
        *stored_mmlu_sections(config.db, models),  # MMLU results of these models, when the store has any
    )
    metadata = RunMetadata(
        created_at=document.created_at,
        seed=config.seed,
        command=data.command,
        judges=(judge_id,),
        prompt_sets=(document.prompt_set,),
        inputs=(InputFile(str(config.db), sha256_file(config.db), len(judgments)),),
        versions={"qlora-eval": __version__, "python": platform.python_version(), "numpy": np.__version__},
        extra={"tournament": config.name, "config": config.source or "(command line)"},
    )
    subtitle = (
        f"{len(models)} models · {len(data.prompts)} prompts of the {document.prompt_set} set · judged by "
        f"{judge_id} in both orders"
    )
    for finding in document.findings:  # computed sentences (e.g. NF4 vs full precision), right under the title
        subtitle += f". {finding['sentence']}"
    return build_report(ReportData(config.name, rated.elo, metadata, sections=sections, subtitle=subtitle))

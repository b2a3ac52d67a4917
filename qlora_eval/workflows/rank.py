"""The ranking workflow: verdict files or the store -> battles -> ratings -> diagnostics -> :class:`RankDocument`.

Imports stay light on purpose (numpy and the rating engine only): the report, and with it matplotlib and
Jinja2, is imported only by :func:`rank_report_html`, so a plain ranking starts in a fraction of a second.

Usage::

    from qlora_eval.workflows.rank import RankRequest, rank

    outcome = rank(RankRequest(db=Path("qlora-eval.db"), method="bt", rounds=1000, seed=0))
    Path("rank.json").write_text(outcome.document.dumps())
"""

from __future__ import annotations

import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qlora_eval import __version__
from qlora_eval.errors import ConfigError, ConvergenceError, InputError, nearest_names
from qlora_eval.interchange import FORMATS, ImportOptions, read_inputs
from qlora_eval.rating.fit_options import FitOptions
from qlora_eval.types import Battle, Judgment, content_key, sha256_text, utc_now
from qlora_eval.workflows.document import InputRecord, RankDocument, Ranking

if TYPE_CHECKING:
    import numpy as np

    from qlora_eval.rating import RankingResult, RatingMethod
    from qlora_eval.report.data import ReportSection, RunMetadata


@dataclass(frozen=True)
class RankRequest:
    """What to rank and how.

    Attributes:
        inputs: verdict files or folders (give these with ``format``, or ``db``).
        format: the interchange format of ``inputs``.
        db: a store to rank instead of files.
        prompt_set: files: the prompt set they belong to; store: only this set.
        reviewer: qlora format: the reviewer named in the file names.
        judges: only verdicts of these judges (None: all).
        models: only battles between these models (None: all).
        method: ``elo`` or ``bt``.
        rounds: Elo orderings or BT bootstrap rounds (None: the method's default).
        seed: seed of the orderings / bootstrap.
        command: the command line, recorded in the document.
        fit: the fit options (``--elo-intervals``, ``--ties``, ``--prior``, ``--anchor``, ``--position-bias``,
            ``--control``); recorded in the document's ``parameters.fit``.
    """

    inputs: tuple[str, ...] = ()
    format: str | None = None
    db: Path | None = None
    prompt_set: str | None = None
    reviewer: str = "gpt-4"
    judges: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    method: str = "elo"
    rounds: int | None = None
    seed: int = 0
    command: str = "qlora-eval rank"
    fit: FitOptions = field(default_factory=FitOptions)

    def check(self) -> None:
        """Refuse contradictory requests before any work.

        Raises:
            ConfigError: files and a store together, neither, or a format for the store.
        """
        if self.inputs and self.db is not None:
            raise ConfigError("give either INPUT files or --db, not both (import the files into the store first)")
        if not self.inputs and self.db is None:
            raise ConfigError("nothing to rank: give INPUT files with --format, or --db PATH")
        if self.db is not None and self.format is not None:
            raise ConfigError("--format applies to INPUT files; the store needs none")


@dataclass(frozen=True)
class RankOutcome:
    """A finished ranking: the document (what ``--json`` writes), the full result and the verdicts ranked."""

    document: RankDocument
    result: RankingResult
    judgments: tuple[Judgment, ...]


def rank(request: RankRequest) -> RankOutcome:
    """Load, filter and rank the verdicts; compute the judge diagnostics.

    Raises:
        ConfigError: a contradictory request.
        InputError: unreadable inputs, no store, or filters that leave nothing.
        ConvergenceError: a Bradley-Terry fit without a finite estimate (use Elo).
    """
    import numpy as np

    from qlora_eval.rating import DEFAULT_ROUNDS, RatingMethod
    from qlora_eval.workflows.diagnostics import judge_diagnostics
    from qlora_eval.workflows.fitting import rank_judgments, stored_answer_texts

    request.check()
    method = RatingMethod(request.method)
    rounds = request.rounds if request.rounds is not None else DEFAULT_ROUNDS[method]
    judgments, inputs = _load_files(request) if request.inputs else _load_store(request)
    judgments = select(judgments, request.judges, request.models)
    lengths = _answer_lengths(request.db, judgments) if request.db is not None else None
    texts: dict[str, str] = {}
    if request.fit.controls and request.db is not None:
        texts = stored_answer_texts(request.db, sorted({j.prompt_set for j in judgments}))
    rng = np.random.default_rng(request.seed)
    result = rank_judgments(judgments, method, rounds, rng, request.fit, answer_text=texts.get, lengths=lengths)
    document = RankDocument(
        ranking=Ranking.from_result(result, seed=request.seed),
        diagnostics=judge_diagnostics(result, judgments, seed=request.seed),
        judges=tuple(sorted({j.judge for j in judgments})),
        prompt_sets=tuple(sorted({j.prompt_set for j in judgments})),
        inputs=inputs,
        # One hash of exactly the verdicts ranked, whatever files or store they came from.
        data_sha256=verdicts_sha256(judgments),
        command=request.command,
        qlora_eval_version=__version__,
        python_version=platform.python_version(),
        numpy_version=np.__version__,
        created_at=utc_now(),
    )
    return RankOutcome(document, result, tuple(judgments))


def rank_report_html(outcome: RankOutcome, request: RankRequest, *, title: str | None = None) -> str:
    """The HTML report of a ranking (imports the report, and with it matplotlib)."""
    from qlora_eval.report import ReportData, build_report
    from qlora_eval.report.agreement import agreement_sections

    sections = (
        stored_mmlu_sections(request.db, [r.model for r in outcome.result.ratings]) if request.db is not None else ()
    )
    diagnostics = outcome.document.diagnostics
    sections = (*agreement_sections(diagnostics.groups, diagnostics.majority_agreement), *sections)
    metadata = run_metadata(outcome.document)
    data = ReportData(title=title or "Pairwise ranking", ranking=outcome.result, metadata=metadata, sections=sections)
    return build_report(data)


def run_metadata(document: RankDocument) -> RunMetadata:
    """The report's run metadata from a rank document."""
    from qlora_eval.report.data import InputFile, RunMetadata

    versions = {
        "qlora-eval": document.qlora_eval_version or "",
        "python": document.python_version or "",
        "numpy": document.numpy_version or "",
    }
    return RunMetadata(
        created_at=document.created_at or "",
        seed=document.ranking.seed,
        command=document.command,
        judges=document.judges,
        prompt_sets=document.prompt_sets,
        inputs=tuple(InputFile(i.path, i.sha256, i.records) for i in document.inputs),
        data_sha256=document.data_sha256,
        versions={k: v for k, v in versions.items() if v},
    )


def rank_with_prior_fallback(
    battles: Sequence[Battle],
    method: RatingMethod,
    rounds: int,
    rng: np.random.Generator,
    lengths: tuple[list[float], list[float]] | None,
) -> tuple[RankingResult, str | None]:
    """Rank; a BT fit without a finite maximum (a model never lost) is refitted with one virtual tie per pair.

    Returns:
        The result and, when the prior was needed, a note saying so (shown in the report and the JSON).
    """
    from qlora_eval.rating import RatingMethod, rank_battles

    try:
        return rank_battles(battles, method, rounds, rng, answer_lengths=lengths), None
    except ConvergenceError as exc:
        if method is not RatingMethod.BT:
            raise
        note = f"plain Bradley-Terry has no finite estimate ({exc}); fitted with prior=1 (one virtual tie per pair)"
        return rank_battles(battles, method, rounds, rng, answer_lengths=lengths, prior=1.0), note


def select(judgments: Sequence[Judgment], judges: Sequence[str] | None, models: Sequence[str] | None) -> list[Judgment]:
    """Keep the judgments of the given judges, between the given models (None keeps all).

    Raises:
        InputError: a judge or model that no judgment names (a typo would otherwise rank nothing).
    """
    if judges is not None:
        known = {j.judge for j in judgments}
        unknown = sorted(set(judges) - known)
        if unknown:
            raise InputError(
                f"no verdicts by judge(s) {', '.join(unknown)}; known judges: {', '.join(sorted(known))}"
                + nearest_names(unknown, known)
            )
        judgments = [j for j in judgments if j.judge in set(judges)]
    if models is not None:
        known = {j.model_a for j in judgments} | {j.model_b for j in judgments}
        unknown = sorted(set(models) - known)
        if unknown:
            raise InputError(
                f"no battles of model(s) {', '.join(unknown)}; known models: {', '.join(sorted(known))}"
                + nearest_names(unknown, known)
            )
        wanted = set(models)
        judgments = [j for j in judgments if j.model_a in wanted and j.model_b in wanted]
    if not judgments:
        raise InputError("no verdicts are left after the --judge/--models/--prompt-set filters")
    return list(judgments)


def verdicts_sha256(judgments: Sequence[Judgment]) -> str:
    """One hash of exactly the verdicts ranked (who, whom, which prompt, which order, what verdict).

    Independent of input order and of where the verdicts came from: the sha256 of the canonical JSON of
    the sorted rows ``[judge, model_a, model_b, prompt_set, prompt_id, order, verdict]``
    (``content_key(rows)``). The value is the same as before the fast path below existed (issue 18), so
    documents' ``data_sha256`` stay comparable across versions.
    """
    # _value_ is the member's value (Enum.value is a descriptor, ~1 s per million reads here).
    rows = [
        (j.judge, j.model_a, j.model_b, j.prompt_set, j.prompt_id, j.order._value_, j.verdict._value_)
        for j in judgments
    ]
    fast = _sorted_rows_json(rows)
    if fast is not None:
        return sha256_text(fast)
    return content_key(sorted(rows))


def _sorted_rows_json(rows: Sequence[tuple[str, ...]]) -> str | None:
    """``canonical_json([sorted(rows)])`` built from one string per row, or None when that shortcut does not apply.

    Sorting a million 7-tuples costs seconds (a tuple comparison compares element by element through
    Python); rows joined with NUL sort in the same order as the tuples when no field holds a NUL (NUL is
    the smallest character, so a field that is a prefix of another still sorts first). And when no field
    holds a character JSON escapes (``"``, backslash, controls), each row's JSON is its fields quoted and
    joined by ``","``. Rows with such characters (rare) take the plain path.
    """
    if not rows:
        return None
    keys = ["\x00".join(row) for row in rows]
    every = "\x00".join(keys)
    if every.count("\x00") != 7 * len(rows) - 1 or _JSON_ESCAPED.search(every) is not None:
        return None
    keys.sort()
    return '[[["' + '"],["'.join(keys).replace("\x00", '","') + '"]]]'


# Characters other than NUL that canonical_json escapes (with ensure_ascii=False): quote, backslash, controls.
_JSON_ESCAPED = re.compile('["\\\\\x01-\x1f]')


def stored_mmlu_sections(db: Path, models: Sequence[str]) -> tuple[ReportSection, ...]:
    """MMLU report sections for the ranked models that have MMLU results in the store (none: no sections)."""
    from qlora_eval.report.mmlu import latest_runs, mmlu_sections
    from qlora_eval.store import Store

    with Store(db) as store:
        rows = [(subject, payload) for _, subject, payload, _ in store.results("mmlu")]
    runs = latest_runs(rows, models)
    return mmlu_sections(runs) if runs else ()


def _load_files(request: RankRequest) -> tuple[list[Judgment], tuple[InputRecord, ...]]:
    if request.format is None:
        raise ConfigError(f"rank INPUT... needs --format ({', '.join(FORMATS)})")
    options = ImportOptions(prompt_set=request.prompt_set, reviewer=request.reviewer)
    batch = read_inputs(list(request.inputs), request.format, options)
    if batch.relative:
        raise InputError(
            "the input holds relative-score reviews (two 1-10 scores per call), not pairwise verdicts, and Elo or "
            "Bradley-Terry does not rank them: import them into a store, then "
            "rank --db DB --method relative --reference MODEL"
        )
    if batch.answers and not batch.judgments:
        raise InputError("the input holds answers only; rank needs verdicts (judge the answers first)")
    judgments = list(batch.judgments)
    if request.prompt_set is not None and FORMATS[request.format].default_prompt_set is None:
        judgments = [j for j in judgments if j.prompt_set == request.prompt_set]
    return judgments, tuple(_input_record(s.to_dict()) for s in batch.sources)


def _input_record(source: dict[str, Any]) -> InputRecord:
    return InputRecord(str(source["path"]), str(source["sha256"]), source.get("records"))


def _load_store(request: RankRequest) -> tuple[list[Judgment], tuple[InputRecord, ...]]:
    from qlora_eval.interchange.base import sha256_file
    from qlora_eval.store import Store

    assert request.db is not None  # check() guarantees files or a store
    path = Path(request.db)
    if not path.is_file():
        raise InputError(
            "no store here; pass --db PATH of an existing store (qlora-eval import creates one)", source=str(path)
        )
    with Store(path) as store:
        judgments = [s.judgment for s in store.judgments(prompt_set=request.prompt_set)]
        if not judgments and store.relative_judgments(prompt_set=request.prompt_set):
            raise InputError(
                "the store holds relative judgments (two 1-10 scores per call) and no pairwise verdicts; "
                "score them with --method relative --reference MODEL",
                source=str(path),
            )
    return judgments, (InputRecord(str(path), sha256_file(path), len(judgments)),)


def _answer_lengths(db: Path, judgments: Sequence[Judgment]) -> tuple[list[float], list[float]] | None:
    """Answer lengths for the length-preference statistic, when the store holds every judged answer."""
    from qlora_eval.judge.diagnostics import answer_lengths
    from qlora_eval.store import Store
    from qlora_eval.workflows.diagnostics import answer_length_table

    with Store(db) as store:
        table = answer_length_table(store, judgments)
    return answer_lengths(judgments, table.get)

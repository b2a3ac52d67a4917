"""Report sections for MMLU results: a summary, a table and bar plot by supercategory, a table by subject.

The input is what ``qlora-eval mmlu --json`` writes (also stored as the store's ``mmlu`` results), one document per
model run; several runs appear side by side, one column per run. The two modes (``qlora``: the QLoRA repo's prompts,
headline = macro average over subjects; ``harness``: lm-evaluation-harness's, headline = micro average) give
different numbers, so every table names the mode and shots of each column and a warning appears when they differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qlora_eval.bench.mmlu import SUPERCATEGORIES
from qlora_eval.errors import InputError
from qlora_eval.report.data import ReportSection
from qlora_eval.report.htmlkit import esc, figure_img, html_table

# The four supercategories of Hendrycks et al., in the order the report shows them.
SUPERCATEGORY_ORDER: tuple[str, ...] = ("STEM", "humanities", "social sciences", "other (business, health, misc.)")
_HEADLINE = {"qlora": "macro_accuracy", "harness": "accuracy"}
_MODE_TEXT = {
    "qlora": "QLoRA repo format; headline = macro average over subjects",
    "harness": "lm-evaluation-harness format; headline = micro average over questions",
}
_MISSING = "–"
_STYLE = """<style>
  .mmlu .warn { background: #fff6e5; border: 1px solid #f0d9a8; border-radius: 6px; padding: 8px 12px;
                font-size: 14px; }
  .mmlu td { overflow-wrap: break-word; }  /* the section's "anywhere" splits words like "harness" */
  .mmlu th { text-transform: none; font-size: 13px; }  /* model names keep their case */
  .mmlu table.totals tbody tr:nth-last-child(-n+2) td { font-weight: 600; }
  .mmlu table.totals tbody tr:nth-last-child(2) td { border-top: 2px solid var(--line); }
</style>"""


@dataclass(frozen=True)
class Score:
    """Accuracy of a group of questions."""

    accuracy: float
    n: int


@dataclass(frozen=True)
class MmluRun:
    """One model's MMLU result as the report reads it.

    Attributes:
        model: the model's name.
        mode: ``qlora`` or ``harness``.
        shots: examples before each question.
        accuracy: micro average over questions.
        macro_accuracy: mean of the subjects' accuracies.
        n: questions scored.
        subjects: subject -> score.
        supercategories: supercategory -> score.
        source: the questions' source (file or ``dataset[split]``), if recorded.
    """

    model: str
    mode: str
    shots: int
    accuracy: float
    macro_accuracy: float
    n: int
    subjects: Mapping[str, Score]
    supercategories: Mapping[str, Score]
    source: str | None = None

    @property
    def headline(self) -> float:
        """The number the mode's reference evaluation reports (macro for qlora, micro for harness)."""
        return self.macro_accuracy if self.mode == "qlora" else self.accuracy

    @property
    def setting(self) -> str:
        return f"{self.mode}, {self.shots}-shot"

    @classmethod
    def from_document(cls, document: Any, *, source: str, model: str | None = None) -> MmluRun:
        """Read one ``qlora-eval mmlu --json`` document.

        Args:
            document: the parsed JSON.
            source: where it came from (file name or store row), named in errors.
            model: the model's name when the document has none (store rows keep it outside the payload).

        Raises:
            InputError: a field is missing or has the wrong type.
        """
        if not isinstance(document, Mapping):
            raise InputError("an MMLU result must be a JSON object (qlora-eval mmlu --json writes one)", source=source)

        def need(key: str, kind: type | tuple[type, ...]) -> Any:
            if key not in document:
                raise InputError(f"field '{key}' is missing; is this a qlora-eval mmlu --json file?", source=source)
            value = document[key]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise InputError(f"field '{key}' has the wrong type ({type(value).__name__})", source=source)
            return value

        def scores(key: str) -> dict[str, Score]:
            out = {}
            for name, entry in need(key, Mapping).items():
                if not isinstance(entry, Mapping) or not isinstance(entry.get("accuracy"), (int, float)):
                    raise InputError(f"'{key}.{name}' needs numeric 'accuracy' and 'n'", source=source)
                if not isinstance(entry.get("n"), int):
                    raise InputError(f"'{key}.{name}' needs numeric 'accuracy' and 'n'", source=source)
                out[str(name)] = Score(float(entry["accuracy"]), int(entry["n"]))
            return out

        mode = need("mode", str)
        if mode not in _HEADLINE:
            raise InputError(f"field 'mode' must be qlora or harness, got {mode!r}", source=source)
        name = document.get("model", model)
        if not isinstance(name, str) or not name:
            raise InputError("no model name: the document has no 'model' field", source=source)
        subjects = scores("subjects")
        unknown = sorted(set(subjects) - set(SUPERCATEGORIES))
        if unknown:
            raise InputError(f"unknown MMLU subjects: {', '.join(unknown)}", source=source)
        origin = document.get("source")
        return cls(
            model=name,
            mode=mode,
            shots=need("shots", int),
            accuracy=float(need("accuracy", (int, float))),
            macro_accuracy=float(need("macro_accuracy", (int, float))),
            n=need("n", int),
            subjects=subjects,
            supercategories=scores("supercategories"),
            source=origin if isinstance(origin, str) else None,
        )


def column_labels(runs: Sequence[MmluRun]) -> list[str]:
    """One distinct label per run: the model name, with the mode and shots when a model appears twice."""
    names = [r.model for r in runs]
    labels = [f"{r.model} ({r.setting})" if names.count(r.model) > 1 else r.model for r in runs]
    # The same model, mode and shots twice (two data files, say): number them so columns stay apart.
    return [f"{label} #{labels[:i].count(label) + 1}" if labels.count(label) > 1 else label for i, label in
            enumerate(labels)]  # fmt: skip


def _pct(score: Score | float | None) -> str:
    if score is None:
        return _MISSING
    value = score.accuracy if isinstance(score, Score) else score
    return f"{100 * value:.1f}%"


def _common_n(runs: Sequence[MmluRun], key: str, field: str) -> int | None:
    """The one question count every run has for a group, or None when they differ (or some lack it)."""
    counts = {getattr(r, field).get(key).n if key in getattr(r, field) else None for r in runs}
    return counts.pop() if len(counts) == 1 and None not in counts else None


def _group_table(runs: Sequence[MmluRun], labels: Sequence[str], keys: Sequence[str], field: str) -> tuple[
    list[str], list[list[str]], list[int]]:  # fmt: skip
    """Columns and rows for supercategories or subjects: one n column when all runs agree, else n per run."""
    shared_n = all(_common_n(runs, k, field) is not None for k in keys)
    columns: list[str] = []
    if shared_n:
        columns.append("n")
        for label in labels:
            columns.append(label)
    else:
        for label in labels:
            columns += [label, f"n · {label}"]
    rows = []
    for key in keys:
        cells: list[str] = []
        if shared_n:
            cells.append(f"{_common_n(runs, key, field):,}")
        for run in runs:
            score = getattr(run, field).get(key)
            cells.append(_pct(score))
            if not shared_n:
                cells.append(_MISSING if score is None else f"{score.n:,}")
        rows.append(cells)
    return columns, rows, list(range(len(columns)))


def _settings_note(runs: Sequence[MmluRun]) -> str:
    settings = sorted({(r.mode, r.shots) for r in runs})
    if len(settings) > 1:
        listed = ", ".join(f"{m} {s}-shot" for m, s in settings)
        return (
            f'<p class="warn">These runs use different settings ({esc(listed)}): the two modes use different '
            "prompts and headline averages and their numbers are <strong>not comparable</strong>; compare columns "
            "of the same setting only.</p>"
        )
    mode, shots = settings[0]
    who = "This run" if len(runs) == 1 else "All runs"
    return f"<p>{who}: <strong>{esc(mode)}</strong> mode ({esc(_MODE_TEXT[mode])}), <strong>{shots}-shot</strong>.</p>"


def summary_section(runs: Sequence[MmluRun], labels: Sequence[str]) -> ReportSection:
    """One row per run: mode, shots, questions, micro and macro accuracy, and the mode's headline."""
    rows = [
        [label, r.mode, str(r.shots), f"{r.n:,}", _pct(r.accuracy), _pct(r.macro_accuracy), _pct(r.headline),
         r.source or "not recorded"]
        for label, r in zip(labels, runs, strict=True)
    ]  # fmt: skip
    columns = ["model", "mode", "shots", "questions", "micro accuracy", "macro accuracy", "headline", "questions from"]
    body = _settings_note(runs) + html_table(columns, rows, numeric=(2, 3, 4, 5, 6))
    return ReportSection(
        "MMLU",
        f'<div class="mmlu">{_STYLE}{body}</div>',
        intro="Accuracy on four-choice questions (chance = 25%). Micro = share of all questions answered right; "
        "macro = mean over subjects. The headline is the average the mode's reference reports: macro for qlora "
        "(the QLoRA repo), micro for harness (lm-evaluation-harness).",
        anchor="mmlu-summary",
    )


def supercategory_plot(runs: Sequence[MmluRun], labels: Sequence[str]) -> Any:
    """Grouped bars: accuracy per supercategory (and over all questions), one bar per run; chance at 25%."""
    import matplotlib.pyplot as plt
    import numpy as np

    from qlora_eval.report.plots import ACCENT, STYLE, short_labels

    groups = [*SUPERCATEGORY_ORDER, "all (micro)"]
    ticks = ["STEM", "humanities", "social\nsciences", "other", "all\n(micro)"]
    palette = [ACCENT, "#e07b39", "#3a9e6f", "#8e5cb5", "#c4455a", "#7a8594", "#c9a227", "#3bb1c4"]
    width = min(0.8 / len(runs), 0.3)  # one run: a slim bar, not a block
    with plt.rc_context(STYLE):  # type: ignore[arg-type]  # rcParams keys are typed as literals
        fig, ax = plt.subplots(figsize=(max(7.0, 1.0 + len(groups) * (0.4 + 0.28 * len(runs))), 3.6))
        x = np.arange(len(groups))
        for i, (run, label) in enumerate(zip(runs, short_labels(list(labels)), strict=True)):
            values = [run.supercategories[g].accuracy if g in run.supercategories else np.nan for g in groups[:-1]]
            values.append(run.accuracy)
            bars = ax.bar(x + width * (i - (len(runs) - 1) / 2), values, width * 0.92, label=label,
                          color=palette[i % len(palette)])  # fmt: skip
            if len(runs) <= 4:
                ax.bar_label(bars, labels=[f"{100 * v:.0f}" if v == v else "" for v in values], fontsize=7.5,
                             padding=1.5, color="#333")  # fmt: skip
        ax.axhline(0.25, color="#8a8f98", linestyle="--", linewidth=1)
        # Label the chance line outside the axes, on the right, where no bar can hide it.
        ax.text(1.01, 0.25, "chance", transform=ax.get_yaxis_transform(), va="center", ha="left", fontsize=8,
                color="#5b6475")  # fmt: skip
        ax.set_xticks(x, ticks)
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}%")
        ax.set_ylabel("accuracy")
        ax.grid(axis="y")
        ax.set_axisbelow(True)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=min(len(runs), 3), frameon=False, fontsize=8.5)
        fig.tight_layout()
    return fig


def supercategory_section(runs: Sequence[MmluRun], labels: Sequence[str]) -> ReportSection:
    """The four supercategories (plus micro and macro totals) per run, as a table and a bar plot."""
    columns, rows, numeric = _group_table(runs, labels, SUPERCATEGORY_ORDER, "supercategories")
    rows = [[name, *cells] for name, cells in zip(SUPERCATEGORY_ORDER, rows, strict=True)]
    shared_n = columns[0] == "n"
    # Same n in every supercategory means the same questions, hence the same total.
    micro = ["all questions (micro)", *([f"{runs[0].n:,}"] if shared_n else [])]
    macro = ["mean over subjects (macro)", *([""] if shared_n else [])]
    for run in runs:
        micro.append(_pct(run.accuracy))
        macro.append(_pct(run.macro_accuracy))
        if not shared_n:
            micro.append(f"{run.n:,}")
            macro.append(f"{len(run.subjects):,} subjects")
    table = html_table(
        ["supercategory", *columns], [*rows, micro, macro], numeric=[i + 1 for i in numeric], css_class="data totals"
    )
    figure = figure_img(
        supercategory_plot(runs, labels),
        "Bar plot of MMLU accuracy by supercategory",
        caption="Accuracy per supercategory and over all questions; the dashed line is chance (25%).",
    )
    return ReportSection(
        "MMLU by supercategory",
        f'<div class="mmlu">{figure}{table}</div>',
        intro="The four supercategories of Hendrycks et al. (2021). A dash means the run had no question of it.",
        anchor="mmlu-supercategories",
    )


def subject_section(runs: Sequence[MmluRun], labels: Sequence[str]) -> ReportSection:
    """Every subject any run scored, grouped by supercategory, with each run's accuracy."""
    present = {s for r in runs for s in r.subjects}
    keys = sorted(present, key=lambda s: (SUPERCATEGORY_ORDER.index(SUPERCATEGORIES[s]), s))
    columns, rows, numeric = _group_table(runs, labels, keys, "subjects")
    rows = [[s.replace("_", " "), SUPERCATEGORIES[s].split(" (")[0], *cells] for s, cells in zip(keys, rows,
            strict=True)]  # fmt: skip
    table = html_table(["subject", "supercategory", *columns], rows, numeric=[i + 2 for i in numeric])
    return ReportSection(
        "MMLU by subject",
        f'<div class="mmlu">{table}</div>',
        intro=f"{len(keys)} subjects, grouped by supercategory. Small subjects (few questions) swing widely; "
        "read them with their n.",
        anchor="mmlu-subjects",
    )


def mmlu_sections(runs: Sequence[MmluRun]) -> tuple[ReportSection, ...]:
    """The MMLU summary, supercategory and subject sections for one or more runs (one column each).

    Raises:
        ValueError: no runs.
    """
    if not runs:
        raise ValueError("need at least one MMLU result")
    labels = column_labels(runs)
    return summary_section(runs, labels), supercategory_section(runs, labels), subject_section(runs, labels)


def latest_runs(rows: Sequence[tuple[str, Mapping[str, Any]]], models: Sequence[str]) -> list[MmluRun]:
    """The newest result per model and setting (mode, shots), for ``models`` only, in their order.

    Args:
        rows: (model, ``mmlu --json`` document) pairs, oldest first (as the store's ``results("mmlu")`` lists them).
        models: the models wanted (a ranking's, best first); others are left out.
    """
    newest: dict[tuple[str, str, int], MmluRun] = {}
    for k, (model, document) in enumerate(rows):
        run = MmluRun.from_document(document, source=f"stored mmlu result {k + 1} ({model})", model=model)
        if run.model in models:
            newest[(run.model, run.mode, run.shots)] = run  # later rows replace earlier ones
    return sorted(newest.values(), key=lambda r: (models.index(r.model), r.mode, r.shots))

"""The relative-score report (``rank --method relative --html``): the paper's "% of ChatGPT" table and a plot.

Reads the document :func:`qlora_eval.workflows.relative.relative_rank` returns (plain JSON data), so a saved
``rank --method relative --json`` file renders the same page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qlora_eval.report.build import build_benchmark_report
from qlora_eval.report.data import ReportSection, RunMetadata
from qlora_eval.report.htmlkit import esc, figure_img, html_table


def relative_plot(models: Sequence[Mapping[str, Any]], reference: str) -> Any:
    """Each model's % of the reference with its 95% interval (horizontal), the reference's 100% as a line."""
    import matplotlib.pyplot as plt

    from qlora_eval.report.plots import ACCENT, STYLE, short_labels

    ordered = sorted(models, key=lambda m: m["percent"])
    with plt.rc_context(STYLE):  # type: ignore[arg-type]  # rcParams keys are typed as literals
        fig, ax = plt.subplots(figsize=(7.0, max(2.4, 1.2 + 0.42 * len(ordered))))
        y = list(range(len(ordered)))
        lows = [m["ci_low"] for m in ordered]
        highs = [m["ci_high"] for m in ordered]
        ax.hlines(y, lows, highs, color=ACCENT, linewidth=2.2, alpha=0.85)
        ax.plot([m["percent"] for m in ordered], y, "o", color=ACCENT)
        ax.axvline(100.0, color="#8a8f98", linestyle="--", linewidth=1)
        ax.text(100.0, len(ordered) - 0.4, f" {reference} = 100%", fontsize=8, color="#5b6475", va="bottom")
        ax.set_yticks(y, short_labels([m["model"] for m in ordered]))
        ax.set_xlabel(f"total score as % of {reference}'s (95% prompt-bootstrap interval)")
        ax.grid(axis="x")
        ax.set_axisbelow(True)
    return fig


def relative_sections(document: Mapping[str, Any]) -> tuple[ReportSection, ...]:
    """The table (model, %, interval, prompts, calls, invalid) and the plot of a relative document."""
    reference = str(document["reference"])
    models = list(document["models"])
    rows = [
        [m["model"], f"{m['percent']:.1f}%", f"[{m['ci_low']:.1f}, {m['ci_high']:.1f}]", m["prompts"], m["calls"],
         m["invalid"]]
        for m in models
    ]  # fmt: skip
    table = html_table(
        ["model", f"% of {reference}", "95% interval", "prompts", "calls", "invalid"], rows, numeric=(1, 2, 3, 4, 5)
    )
    unscored = dict(document.get("unscored", {}))
    if unscored:
        notes = "".join(
            f"<li>{esc(m)}: all {n} calls unparsable (INVALID); not scored</li>" for m, n in unscored.items()
        )
        table += f"<ul>{notes}</ul>"
    intro = (
        f"The judge scored both answers from 1 to 10 in both orders; a model's result is its total score as a "
        f"percentage of {reference}'s over the same calls (INVALID calls counted, never scored), with a "
        f"{int(document['rounds']):,}-round prompt-bootstrap 95% interval."
    )
    sections = [ReportSection(f"Relative score (% of {reference})", table, intro=intro, anchor="relative-table")]
    if models:
        figure = figure_img(relative_plot(models, reference), f"% of {reference} per model with 95% intervals")
        sections.append(ReportSection("Relative score plot", figure, anchor="relative-plot"))
    return tuple(sections)


def relative_report_html(document: Mapping[str, Any], *, title: str | None = None) -> str:
    """One self-contained HTML page for a relative document."""
    metadata = RunMetadata.from_rank_document(document)
    best = max(document["models"], key=lambda m: m["percent"], default=None)
    cards = [("reference", str(document["reference"])), ("models", str(len(document["models"])))]
    if best is not None:
        cards.append(("best", f"{best['model']}: {best['percent']:.1f}%"))
    return build_benchmark_report(
        title or f"Relative scores (% of {document['reference']})", relative_sections(document), metadata, cards=cards
    )


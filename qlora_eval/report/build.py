"""Assemble the report: built-in sections from the ranking, the callers' extra sections, run metadata."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from qlora_eval.report import plots
from qlora_eval.report.adjustments import adjustments_section
from qlora_eval.report.data import ReportData, ReportSection, RunMetadata
from qlora_eval.report.htmlkit import esc, figure_img, html_table

if TYPE_CHECKING:
    from qlora_eval.rating import RankingResult


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("qlora_eval.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def leaderboard_table(result: RankingResult) -> str:
    """The ranking as an HTML table (rank range, rating, interval, se, record, score, invalid verdicts).

    The one leaderboard table of the reports: the main ranking and a tournament's second (BT) ranking use it.
    """
    rows = []
    for r in result.ratings:
        best, worst = result.rank_ranges[r.model]
        played = r.wins + r.losses + r.ties
        score = (r.wins + 0.5 * r.ties) / played if played else None
        rows.append(
            [
                str(best) if best == worst else f"{best}–{worst}",
                r.model,
                f"{r.rating:.1f}",
                f"{r.ci_low:.1f} – {r.ci_high:.1f}",
                f"{r.se:.1f}",
                f"{r.wins} / {r.losses} / {r.ties}",
                _fmt_pct(score),
                str(result.invalid_per_model.get(r.model, 0)),
            ]
        )
    columns = ["rank", "model", "rating", "95% interval", "se", "wins / losses / ties", "score", "invalid"]
    return html_table(columns, rows, numeric=(0, 2, 3, 4, 5, 6, 7))


def leaderboard_section(data: ReportData) -> ReportSection:
    """The ranking as a table: rank range, rating, interval, se, record, invalid verdicts."""
    result = data.ranking
    orderings = result.method.value == "elo" and result.parameters.get("intervals") != "bootstrap"
    spread = "orderings" if orderings else "prompt bootstrap rounds"
    se_text = "the standard error of the mean over orderings" if orderings else "the bootstrap standard deviation"
    if result.method.value == "elo" and not orderings:
        spread += " (each resamples the prompts and replays them in a random order; the rating is the mean over "
        spread += "as many orderings of all battles)"
    intro = (
        f"Ratings in points on the Elo scale (400 points = 10:1 odds). The interval is the 2.5–97.5 percentile "
        f"range over {result.rounds:,} {spread}; se is {se_text}. Models whose intervals overlap share a rank "
        "range (best rank = 1 + the number of models whose interval lies entirely above). "
        "Score = (wins + ties/2) / battles; ties include both-bad verdicts."
    )
    return ReportSection("Leaderboard", leaderboard_table(result), intro=intro)


def interval_section(data: ReportData) -> ReportSection:
    fig = plots.forest_plot(data.ranking)
    return ReportSection(
        "Rating intervals",
        figure_img(fig, "Forest plot of ratings with 95% intervals"),
        intro="Each model's rating (dot) and 95% interval (bar), best on top. Bars that do not overlap mark "
        "differences that the verdicts support.",
    )


def distribution_section(data: ReportData) -> ReportSection:
    result = data.ranking
    what = "random orderings of the battles" if result.method.value == "elo" else "bootstrap resamples of the prompts"
    return ReportSection(
        "Rating distribution",
        figure_img(plots.distribution_plot(result), "Distribution of ratings across rounds"),
        intro=f"How each model's rating varies over {result.rounds:,} {what}.",
    )


def head_to_head_section(data: ReportData) -> ReportSection:
    result = data.ranking
    observed = figure_img(
        plots.win_rate_heatmap(result),
        "Observed win-rate heatmap",
        caption="Observed win rate of the row model against the column model (%), ties count half; grey = never met.",
    )
    predicted = figure_img(
        plots.win_rate_heatmap(result, predicted=True),
        "Predicted win-rate heatmap",
        caption="Win rate the ratings predict (%): compare with the observed one to see where the model fits badly.",
    )
    counts = figure_img(
        plots.count_heatmap(result),
        "Battle count heatmap",
        caption="Valid battles between each pair (both presentation orders together).",
    )
    return ReportSection(
        "Head to head",
        f'<div class="grid2">{observed}{predicted}</div><div class="grid2">{counts}</div>',
        intro="Rows and columns are in leaderboard order.",
    )


def bias_section(data: ReportData) -> ReportSection:
    result = data.ranking
    rows = []
    items = [("all judges", result.bias), *sorted(result.bias_by_judge.items())]
    for judge, b in items:
        ci = "n/a" if b.first_win_ci is None else f"{100 * b.first_win_ci[0]:.1f} – {100 * b.first_win_ci[1]:.1f}%"
        rows.append(
            [
                judge,
                f"{b.decisive:,}",
                _fmt_pct(b.first_win_rate),
                ci,
                f"{b.swap_pairs:,}",
                _fmt_pct(b.consistency),
            ]
        )
    columns = ["judge", "decisive verdicts", "first shown wins", "95% interval", "swapped pairs", "verdict kept"]
    table = html_table(columns, rows, numeric=(1, 2, 3, 4, 5))
    fig = plots.position_bias_plot(result.bias_by_judge)
    figure = figure_img(fig, "Position bias per judge") if fig is not None else ""
    return ReportSection(
        "Judge position bias",
        figure + table,
        intro="A fair judge picks the answer shown first in 50% of decisive verdicts. 'Verdict kept' is the share "
        "of prompts judged in both orders whose verdict survived swapping the answers.",
    )


def invalid_section(data: ReportData) -> ReportSection:
    result = data.ranking
    total = result.battles + result.invalid
    share = f"{100 * result.invalid / total:.1f}%" if total else "n/a"
    rows = [[model, str(count)] for model, count in sorted(result.invalid_per_model.items(), key=lambda kv: -kv[1])]
    return ReportSection(
        "Invalid verdicts",
        f"<p><strong>{result.invalid:,}</strong> of {total:,} verdicts ({esc(share)}) could not be parsed and are "
        "counted here instead of being rated; they are never turned into ties.</p>"
        + html_table(["model", "invalid verdicts it took part in"], rows, numeric=(1,)),
    )


def metadata_section(metadata: RunMetadata, data: ReportData) -> ReportSection:
    result = data.ranking
    params = ", ".join(f"{k}={v}" for k, v in result.parameters.items())
    facts = [
        ["created", metadata.created_at],
        ["method", f"{result.method.value} ({params})"],
        ["rounds", f"{result.rounds:,}"],
        ["seed", "not recorded" if metadata.seed is None else str(metadata.seed)],
        ["judges", ", ".join(metadata.judges) or "not recorded"],
        ["prompt sets", ", ".join(metadata.prompt_sets) or "not recorded"],
        ["verdicts hash", metadata.data_sha256 or "not recorded"],
    ]
    return _metadata_section(metadata, facts)


def _metadata_section(metadata: RunMetadata, facts: list[list[str]]) -> ReportSection:
    """The run metadata section: ``facts`` first, then versions, extra facts, the command and the inputs."""
    facts = [
        *facts,
        *[[name, version] for name, version in metadata.versions.items()],
        *[[key, value] for key, value in metadata.extra.items()],
    ]
    body = html_table(["", ""], facts, css_class="facts")
    if metadata.command:
        body += f'<p class="label">command</p><pre class="command">{esc(metadata.command)}</pre>'
    if metadata.inputs:
        table = html_table(
            ["input", "sha256", "records"],
            [[i.path, i.sha256, "" if i.records is None else f"{i.records:,}"] for i in metadata.inputs],
            numeric=(2,),
            css_class="data inputs",
        )
        n = len(metadata.inputs)
        summary = f"{n} input file{'s' if n != 1 else ''} with sha256"
        # A long list of hashes would bury the page; fold it away beyond a handful of files.
        body += f"<details{' open' if n <= 5 else ''}><summary>{esc(summary)}</summary>{table}</details>"
    return ReportSection("Run metadata", body, intro="Everything needed to reproduce these numbers.")


def _check_anchors(builtin: list[str], sections: tuple[ReportSection, ...]) -> None:
    # Check anchors before drawing anything: a clash is the caller's bug and should fail fast.
    slugs = [ReportSection(t, "").slug for t in builtin] + [s.slug for s in sections]
    duplicates = sorted({s for s in slugs if slugs.count(s) > 1})
    if duplicates:
        raise ValueError(f"report sections need distinct anchors; repeated: {', '.join(duplicates)}")


def build_report(data: ReportData) -> str:
    """Render the whole report as one self-contained HTML page (plots embedded, no external files).

    Built-in sections come first (leaderboard, intervals, distribution, head to head, position bias,
    invalid verdicts), then ``data.sections`` in order, then the run metadata.
    """
    builtin = ["Leaderboard", "Rating intervals", "Rating distribution", "Head to head", "Judge position bias",
               "Invalid verdicts", "Run metadata"]  # fmt: skip
    _check_anchors(builtin, data.sections)
    sections = [
        leaderboard_section(data),
        interval_section(data),
        distribution_section(data),
        head_to_head_section(data),
        bias_section(data),
        invalid_section(data),
        *([adjusted] if (adjusted := adjustments_section(data.ranking)) is not None else []),
        *data.sections,
        metadata_section(data.metadata, data),
    ]
    result = data.ranking
    judges = sorted(result.bias_by_judge)
    elo = result.method.value == "elo"
    cards = [
        ("models", f"{len(result.models):,}"),
        ("rated battles", f"{result.battles:,}"),
        ("invalid verdicts", f"{result.invalid:,}"),
        ("judges", f"{len(judges):,}"),
        ("Elo orderings" if elo else "bootstrap rounds", f"{result.rounds:,}"),
    ]
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=data.title,
        subtitle=data.subtitle,
        created_at=data.metadata.created_at,
        method="Elo" if elo else "Bradley-Terry",
        cards=cards,
        leader=result.ratings[0].model if result.ratings else None,
        sections=[{"title": s.title, "slug": s.slug, "intro": s.intro, "html": Markup(s.html)} for s in sections],
    )


def build_benchmark_report(
    title: str,
    sections: Sequence[ReportSection],
    metadata: RunMetadata,
    *,
    subtitle: str | None = None,
    cards: Sequence[tuple[str, str]] = (),
) -> str:
    """A report without a ranking (benchmarks such as MMLU): the same page, stylesheet and metadata section.

    Args:
        title: page title (plain text).
        sections: the sections, in order; the run metadata section is appended.
        metadata: how the numbers were made (its judge/seed/verdict fields are shown only when set).
        subtitle: an optional plain-text line under the title.
        cards: (label, value) headline figures shown under the title.

    Returns:
        One self-contained HTML page.
    """
    _check_anchors(["Run metadata"], tuple(sections))
    facts = [["created", metadata.created_at]]
    if metadata.seed is not None:
        facts.append(["seed", str(metadata.seed)])
    if metadata.judges:
        facts.append(["judges", ", ".join(metadata.judges)])
    if metadata.prompt_sets:
        facts.append(["prompt sets", ", ".join(metadata.prompt_sets)])
    if metadata.data_sha256:
        facts.append(["data hash", metadata.data_sha256])
    shown = [*sections, _metadata_section(metadata, facts)]
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=title,
        subtitle=subtitle,
        created_at=metadata.created_at,
        method=None,
        cards=list(cards),
        leader=None,
        sections=[{"title": s.title, "slug": s.slug, "intro": s.intro, "html": Markup(s.html)} for s in shown],
    )


def write_report(data: ReportData, path: str | Path) -> Path:
    """Render and write the report; returns the path."""
    target = Path(path)
    target.write_text(build_report(data), encoding="utf-8")
    return target

"""The report section of a Bradley-Terry fit's adjustments: first-position advantage, style control."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qlora_eval.report.data import ReportSection
from qlora_eval.report.htmlkit import html_table

if TYPE_CHECKING:
    from qlora_eval.rating import RankingResult

TITLE = "Position and style adjustments"


def adjustments_section(result: RankingResult) -> ReportSection | None:
    """Coefficients with their intervals, style-controlled ratings beside the raw ones; None when not fitted."""
    adjustments = result.adjustments
    if adjustments is None:
        return None
    coefficients = ([adjustments.position] if adjustments.position is not None else []) + [
        c for c in adjustments.style if c.name != "position"
    ]
    rows = [[c.name, f"{c.elo:+.1f}", f"[{c.ci_low:+.1f}, {c.ci_high:+.1f}]", f"{c.se:.1f}"] for c in coefficients]
    body = html_table(["covariate", "Elo points", "95% interval", "se"], rows, numeric=(1, 2, 3))
    if adjustments.controlled:
        raw = {r.model: r for r in result.ratings}
        controlled_rows = [
            [
                row.model,
                f"{row.rating:.1f}",
                f"[{row.ci_low:.1f}, {row.ci_high:.1f}]",
                f"{raw[row.model].rating:.1f}",
                f"{row.rating - raw[row.model].rating:+.1f}",
            ]
            for row in adjustments.controlled
        ]
        body += html_table(
            ["model", "style-controlled rating", "95% interval", "raw rating", "change"],
            controlled_rows,
            numeric=(1, 2, 3, 4),
        )
    intro = (
        "What the judge's preferences are worth, in Elo points, fitted together with the ratings: the first-position "
        "advantage (the ratings in the leaderboard are free of it) and, with style control, the advantage of an answer "
        "that is entirely longer / has all the markdown over one that has none, with the ratings those preferences "
        "leave (style-controlled) beside the raw ones."
    )
    if adjustments.dropped:
        intro += f" Left out because no pair of answers differs in them: {', '.join(adjustments.dropped)}."
    return ReportSection(TITLE, body, intro=intro)

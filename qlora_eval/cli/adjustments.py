"""Printing of a ranking's adjustments: the first-position advantage, style coefficients, controlled ratings."""

from __future__ import annotations

from typing import Any

from qlora_eval.workflows.document import Ranking


def _interval(item: dict[str, Any], key: str) -> str:
    return f"{item[key]:+.1f} [{item['ci_low']:+.1f}, {item['ci_high']:+.1f}]"


def format_adjustments(ranking: Ranking) -> str:
    """Lines under the leaderboard: what ``--position-bias on`` and ``--control`` found ("" when neither ran)."""
    adjustments = ranking.adjustments
    if not adjustments:
        return ""
    lines: list[str] = []
    position = adjustments.get("position_advantage")
    if position:
        lines.append(
            f"first-position advantage: {_interval(position, 'elo')} Elo points (95% interval); "
            "the ratings above are free of it"
        )
    style = adjustments.get("style")
    if style:
        for coefficient in style["coefficients"]:
            if coefficient["name"] == "position":
                continue
            lines.append(
                f"style {coefficient['name']}: {_interval(coefficient, 'elo')} Elo points for an answer that has "
                "all of it over one that has none"
            )
        if style.get("dropped"):
            lines.append(f"left out (no answer differs in them): {', '.join(style['dropped'])}")
        raw = {row.model: row.rating for row in ranking.models}
        lines.append("style-controlled ratings (raw beside them):")
        width = max(len(row["model"]) for row in style["models"])
        for row in style["models"]:
            lines.append(
                f"  {row['model']:<{width}}  {row['rating']:7.1f}  [{row['ci_low']:7.1f}, {row['ci_high']:7.1f}]"
                f"  raw {raw.get(row['model'], float('nan')):7.1f}"
            )
    return "\n".join(lines)

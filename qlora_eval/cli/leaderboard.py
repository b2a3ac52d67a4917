"""The plain-text leaderboard that ``rank`` and ``tournament`` print (one home for both)."""

from __future__ import annotations

from qlora_eval.workflows.document import Ranking


def format_leaderboard(ranking: Ranking) -> str:
    """The ranking as a plain-text table with a one-line summary and the position-bias figures."""
    elo = ranking.method == "elo"
    method = "Elo" if elo else "Bradley-Terry"
    unit = "orderings" if elo else "bootstrap rounds"
    lines = [
        f"{method} ratings over {ranking.rounds or 0:,} {unit} of {ranking.battles or 0:,} battles "
        f"({ranking.invalid or 0:,} invalid verdicts not rated), seed {ranking.seed}",
        "",
    ]
    rows = [("rank", "model", "rating", "95% interval", "se", "wins", "losses", "ties")]
    for m in ranking.models:
        best, worst = ranking.rank_ranges[m.model]
        rows.append(
            (
                str(best) if best == worst else f"{best}-{worst}",
                m.model,
                f"{m.rating:.1f}",
                f"[{m.ci_low:.1f}, {m.ci_high:.1f}]",
                f"{m.se:.1f}" if m.se is not None else "n/a",
                str(m.wins),
                str(m.losses),
                str(m.ties),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [c.ljust(w) if i == 1 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    bias = ranking.bias
    lines.append("")
    if bias.get("first_win_rate") is not None:
        low, high = bias["first_win_ci"]
        lines.append(
            f"position bias: the answer shown first won {100 * bias['first_win_rate']:.1f}% of "
            f"{bias['decisive']:,} decisive verdicts (95% CI {100 * low:.1f}-{100 * high:.1f}%; 50% = no bias)"
        )
    if bias.get("consistency") is not None:
        lines.append(
            f"order swap: {100 * bias['consistency']:.1f}% of {bias['swap_pairs']:,} verdict pairs "
            "kept their verdict when the answers were shown the other way round"
        )
    if elo and ranking.parameters.get("intervals") == "bootstrap":
        lines.append(
            "interval: 2.5-97.5 percentiles over prompt bootstrap rounds (rating: mean over orderings of all "
            "battles); se: bootstrap standard deviation"
        )
    elif elo:
        lines.append("interval: 2.5-97.5 percentiles over orderings; se: standard error of the mean rating")
    else:
        lines.append("interval: 2.5-97.5 percentiles over prompt bootstrap rounds; se: bootstrap standard deviation")
    return "\n".join(lines)

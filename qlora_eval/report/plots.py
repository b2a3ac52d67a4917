"""The report's figures (matplotlib, Agg): forest plot, rating distributions, heatmaps, position bias.

Each function returns a ``matplotlib.figure.Figure``; ``htmlkit.figure_img`` embeds and closes it. Models
are drawn best first (the order of ``RankingResult.ratings``). Sizes grow with the number of models so labels
never overlap; long model names are shortened in the middle (tables show them in full).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # never open a window; the report is a file

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from qlora_eval.rating import PositionBias, RankingResult

STYLE: dict[str, Any] = {
    # Glyphs as paths: the browser then draws exactly what matplotlib laid out, whatever fonts it has.
    "svg.fonttype": "path",
    "svg.hashsalt": "qlora-eval",  # stable ids: the same data gives the same file
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # ships with matplotlib, so it is always there
    "text.parse_math": False,  # model names are user text: "$" must print as "$", never start mathtext
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#8a8f98",
    "axes.labelcolor": "#222",
    "xtick.color": "#333",
    "ytick.color": "#333",
    "grid.color": "#e4e6ea",
    "figure.dpi": 96,
}
ACCENT = "#2f6db5"
MAX_LABEL = 34


def _style() -> Any:
    """The report's matplotlib style, as a context manager."""
    return plt.rc_context(STYLE)  # type: ignore[arg-type]  # rcParams keys are typed as literals


def short_labels(names: Sequence[str], limit: int = MAX_LABEL) -> list[str]:
    """Names shortened in the middle to ``limit`` characters; full names where shortening would clash."""
    out = []
    for name in names:
        if len(name) <= limit:
            out.append(name)
        else:
            head = (limit - 1) // 2
            out.append(name[:head] + "…" + name[-(limit - 1 - head) :])
    return out if len(set(out)) == len(out) else list(names)


def _unit(result: RankingResult) -> str:
    return "Elo rating (points)" if result.method.value == "elo" else "Bradley-Terry rating (Elo scale, points)"


def forest_plot(result: RankingResult) -> Figure:
    """Each model's rating with its 95% interval, best on top."""
    ratings = result.ratings
    m = len(ratings)
    labels = short_labels([r.model for r in ratings])
    with _style():
        fig, ax = plt.subplots(figsize=(7.6, 0.42 * m + 1.1))
        y = np.arange(m)[::-1]
        lows = np.array([r.ci_low for r in ratings])
        highs = np.array([r.ci_high for r in ratings])
        points = np.array([r.rating for r in ratings])
        ax.hlines(y, lows, highs, color=ACCENT, linewidth=2.2, alpha=0.85)
        ax.plot(points, y, "o", color="#123f73", markersize=6, zorder=3)
        span = float(highs.max() - lows.min()) or 1.0
        for yi, hi, p in zip(y, highs, points, strict=True):
            ax.text(hi + 0.015 * span, yi, f"{p:.0f}", va="center", fontsize=8.5, color="#333")
        ax.set_yticks(y, labels)
        ax.set_xlim(lows.min() - 0.05 * span, highs.max() + 0.12 * span)
        ax.set_ylim(-0.7, m - 0.3)
        ax.grid(axis="x")
        ax.set_axisbelow(True)
        ax.set_xlabel(_unit(result) + ", dot = estimate, bar = 95% interval")
        fig.tight_layout()
    return fig


def distribution_plot(result: RankingResult) -> Figure:
    """Violin plot of each model's rating over all orderings (Elo) or bootstrap rounds (BT)."""
    ratings = result.ratings
    m = len(ratings)
    column = {name: i for i, name in enumerate(result.models)}
    samples = [np.asarray(result.samples[:, column[r.model]], dtype=np.float64) for r in ratings]
    with _style():
        fig, ax = plt.subplots(figsize=(7.6, 0.48 * m + 1.1))
        positions = np.arange(m)[::-1]
        finite = [s[np.isfinite(s)] for s in samples]
        spread = [s for s in finite if s.size and np.ptp(s) > 0]
        if spread and len(spread) == len(finite):
            parts = ax.violinplot(finite, positions=positions, vert=False, widths=0.8, showextrema=False)
            for body in parts["bodies"]:  # type: ignore[attr-defined]
                body.set_facecolor(ACCENT)
                body.set_alpha(0.35)
                body.set_edgecolor(ACCENT)
        for pos, s in zip(positions, finite, strict=True):
            if s.size:
                low, med, high = np.percentile(s, [2.5, 50, 97.5])
                ax.hlines(pos, low, high, color="#123f73", linewidth=1.4)
                ax.plot([med], [pos], "|", color="#123f73", markersize=10, markeredgewidth=2)
        ax.set_yticks(positions, short_labels([r.model for r in ratings]))
        ax.set_ylim(-0.7, m - 0.3)
        ax.grid(axis="x")
        ax.set_axisbelow(True)
        what = "orderings" if result.method.value == "elo" else "bootstrap rounds"
        ax.set_xlabel(f"{_unit(result)} across {result.rounds:,} {what}; tick = median, line = 2.5-97.5%")
        fig.tight_layout()
    return fig


def _heatmap(
    matrix: np.ndarray,
    labels: list[str],
    *,
    cmap: str,
    vmin: float,
    vmax: float,
    fmt: str,
    colorbar_label: str,
) -> Figure:
    m = len(labels)
    # Lay the figure out in inches around fixed-size cells, so long labels add room instead of squeezing
    # the cells (tight_layout on a fixed figure size shrinks the matrix to a stamp when names are long).
    cell = 0.4 if m <= 12 else 0.3
    label_in = max(len(label) for label in labels) * 0.072 + 0.25  # ~0.072 in per character at 9.5 pt
    grid = cell * m
    left, bottom = label_in + 0.35, label_in * 0.68 + 0.45  # x labels are rotated 40 degrees
    width, height = left + grid + 1.2, bottom + grid + 0.15
    with _style():
        fig = plt.figure(figsize=(width, height))
        ax = fig.add_axes((left / width, bottom / height, grid / width, grid / height))
        cax = fig.add_axes(((left + grid + 0.15) / width, bottom / height, 0.16 / width, grid / height))
        masked = np.ma.masked_invalid(matrix)
        cmap_obj = plt.get_cmap(cmap).copy()
        cmap_obj.set_bad("#f1f2f4")
        image = ax.imshow(masked, cmap=cmap_obj, vmin=vmin, vmax=vmax, aspect="equal")
        ax.set_xticks(np.arange(m), labels, rotation=40, ha="right", rotation_mode="anchor")
        ax.set_yticks(np.arange(m), labels)
        ax.set_xlabel("opponent")
        ax.set_ylabel("model")
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.tick_params(length=0)
        if m <= 16:
            for i in range(m):
                for j in range(m):
                    value = matrix[i, j]
                    if not np.isfinite(value):
                        continue
                    shade = (value - vmin) / (vmax - vmin) if vmax > vmin else 0.5
                    dark = shade > 0.72 or (cmap == "RdBu" and shade < 0.22)
                    ax.text(
                        j,
                        i,
                        format(value, fmt),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if dark else "#1a1a1a",
                    )
        bar = fig.colorbar(image, cax=cax)
        bar.set_label(colorbar_label)
        bar.outline.set_visible(False)
    return fig


def _ordered(result: RankingResult, matrix: np.ndarray) -> tuple[np.ndarray, list[str]]:
    column = {name: i for i, name in enumerate(result.win_rates.models)}
    idx = [column[r.model] for r in result.ratings]
    return matrix[np.ix_(idx, idx)], short_labels([r.model for r in result.ratings])


def win_rate_heatmap(result: RankingResult, *, predicted: bool = False) -> Figure:
    """Observed (or predicted) win rate of each row model against each column model, in percent."""
    source = result.win_rates.predicted if predicted else result.win_rates.observed
    matrix, labels = _ordered(result, 100.0 * np.asarray(source, dtype=np.float64))
    label = "predicted" if predicted else "observed"
    return _heatmap(
        matrix, labels, cmap="RdBu", vmin=0, vmax=100, fmt=".0f", colorbar_label=f"{label} win rate of model (%)"
    )


def count_heatmap(result: RankingResult) -> Figure:
    """Valid battles between each pair of models (both orders together)."""
    matrix, labels = _ordered(result, np.asarray(result.win_rates.counts, dtype=np.float64))
    off_diag = matrix[~np.eye(len(labels), dtype=bool)] if len(labels) > 1 else np.array([1.0])
    np.fill_diagonal(matrix, np.nan)
    return _heatmap(
        matrix,
        labels,
        cmap="Blues",
        vmin=0,
        vmax=float(max(1.0, off_diag.max())),
        fmt=".0f",
        colorbar_label="valid battles (count)",
    )


def position_bias_plot(by_judge: dict[str, PositionBias]) -> Figure | None:
    """Per judge: how often the answer shown first wins a decisive verdict, with its 95% interval."""
    judges = [j for j, b in by_judge.items() if b.first_win_rate is not None and b.first_win_ci is not None]
    if not judges:
        return None
    with _style():
        fig, ax = plt.subplots(figsize=(7.6, 0.45 * len(judges) + 1.2))
        y = np.arange(len(judges))[::-1]
        for yi, judge in zip(y, judges, strict=True):
            bias = by_judge[judge]
            assert bias.first_win_rate is not None and bias.first_win_ci is not None
            low, high = bias.first_win_ci
            ax.hlines(yi, 100 * low, 100 * high, color=ACCENT, linewidth=2.2)
            ax.plot(100 * bias.first_win_rate, yi, "o", color="#123f73", markersize=6)
        ax.axvline(50, color="#b33", linestyle="--", linewidth=1)
        ax.text(50, len(judges) - 0.35, " no bias", color="#b33", fontsize=8, va="bottom")
        ax.set_yticks(y, short_labels(judges))
        ax.set_xlim(0, 100)
        ax.set_ylim(-0.7, len(judges) - 0.1)
        ax.grid(axis="x")
        ax.set_axisbelow(True)
        ax.set_xlabel("answer shown first wins (% of decisive verdicts), bar = 95% Wilson interval")
        fig.tight_layout()
    return fig

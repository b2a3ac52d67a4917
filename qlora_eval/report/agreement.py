"""Report sections for agreement between judges and judge groups (the ``groups`` and ``majority_agreement`` keys of
the ``diagnostics`` JSON): majority votes and Fleiss' kappa per group, and each judge against a group's majority.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qlora_eval.report.data import ReportSection
from qlora_eval.report.htmlkit import html_table


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def agreement_sections(
    groups: Sequence[Mapping[str, Any]], majority: Sequence[Mapping[str, Any]]
) -> tuple[ReportSection, ...]:
    """Two tables (nothing when no two judges share prompts)."""
    if not groups:
        return ()
    rows = [
        [g["group"], g["raters"], g["subjects"], g["multi_rated"], _num(g["fleiss_kappa"]),
         g["majority"].get("first model wins", 0), g["majority"].get("second model wins", 0),
         g["majority"].get("tie", 0), g["majority"].get("split", 0)]
        for g in groups
    ]  # fmt: skip
    columns = ["judge or group", "raters", "subjects", "rated 2+ times", "Fleiss' kappa", "majority: first wins",
               "second wins", "tie", "split"]  # fmt: skip
    sections = [
        ReportSection(
            "Majority votes and agreement within judge groups",
            html_table(columns, rows, numeric=tuple(range(1, 9))),
            intro="A subject is one prompt and one model pair (either order). Fleiss' kappa measures agreement "
            "among the ratings of a subject rated two or more times (for a single judge: its two orders); the "
            "majority is the outcome given strictly more often than any other (split: no majority).",
            anchor="group-agreement",
        )
    ]
    if majority:
        rows = [
            [m["judge"], m["group"], m["shared"], _num(m["agreement"]), _num(m["cohen_kappa"]),
             _num(m["kendall_tau"]), _num(m["spearman_rho"])]
            for m in majority
        ]  # fmt: skip
        sections.append(
            ReportSection(
                "Judges against group majorities",
                html_table(
                    [
                        "judge",
                        "majority of",
                        "shared subjects",
                        "agreement",
                        "Cohen's kappa",
                        "Kendall tau",
                        "Spearman rho",
                    ],
                    rows,
                    numeric=(2, 3, 4, 5, 6),
                ),
                intro="Each judge's (majority) outcome against another judge's or group's majority vote on the "
                "subjects both decided; tau and rho compare the judge's Elo ranking with the ranking of the "
                "majority votes (the QLoRA paper: GPT-4 vs the human majority, kappa 0.25, tau 0.43, rho 0.55).",
                anchor="majority-agreement",
            )
        )
    return tuple(sections)

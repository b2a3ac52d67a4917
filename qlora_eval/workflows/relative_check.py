"""The CI gate for relative documents (``rank --method relative --json``): the same rule as for rankings.

A model regresses when its percentage of the reference drops by more than ``max_drop`` points **and** the
candidate's whole 95% interval lies below the baseline's. Both documents must use the same reference model
(percentages of different references cannot be compared).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qlora_eval.errors import InputError
from qlora_eval.paths import read_text
from qlora_eval.workflows.check import md_escape


@dataclass(frozen=True)
class RelativeCheck:
    """The gate's verdict on two relative documents: rows (model, base %, candidate %, status), missing models."""

    reference: str
    rows: tuple[tuple[str, float, float, str], ...]
    missing: tuple[str, ...]
    failed: bool


def load_json(path: str | Path) -> dict[str, Any]:
    """A JSON document as a dict (InputError naming the file when it is not one)."""
    text = read_text(path, expected="a file written by qlora-eval rank --json")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not JSON ({exc.msg}); expected rank --json output", source=str(path), line=exc.lineno
        ) from exc
    if not isinstance(data, dict):
        raise InputError("expected a JSON object (rank --json output)", source=str(path))
    return data


def is_relative(document: dict[str, Any]) -> bool:
    """Whether a ``rank --json`` document is a relative table (``"method": "relative"``)."""
    return document.get("method") == "relative"


def check_relative(
    baseline: dict[str, Any],
    candidate: dict[str, Any],
    *,
    max_drop: float,
    allow_missing: bool = False,
    allow_different: bool = False,
    source: str,
) -> RelativeCheck:
    """Compare two relative documents model by model.

    Raises:
        InputError: the candidate is not relative, or the references differ, or a row lacks its fields.
    """
    if not is_relative(candidate):
        raise InputError(
            "the baseline is a relative table (rank --method relative) but the candidate is not; compare like with "
            "like",
            source=source,
        )
    if baseline.get("reference") != candidate.get("reference"):
        raise InputError(
            f"the documents score against different references ({baseline.get('reference')!r} vs "
            f"{candidate.get('reference')!r}); percentages of different references cannot be compared",
            source=source,
        )
    for key in ("prompt_sets", "judges"):  # different verdicts give percentages that are not comparable
        base_values, cand_values = sorted(baseline.get(key) or ()), sorted(candidate.get(key) or ())
        if base_values != cand_values and not allow_different:
            raise InputError(
                f"the documents are of different {key.replace('_', ' ')} (baseline {base_values}, candidate "
                f"{cand_values}); rank both on the same ones, or pass --allow-different to compare anyway",
                source=source,
            )
    base, cand = _rows(baseline, "baseline"), _rows(candidate, source)
    rows = []
    failed = False
    for model, (percent, low, _high) in sorted(base.items(), key=lambda kv: -kv[1][0]):
        if model not in cand:
            continue
        new, _new_low, new_high = cand[model]
        if percent - new > max_drop and new_high < low:
            status, failed = "REGRESSED", True
        elif new < percent:
            status = "dropped, within intervals" if percent - new > max_drop else "ok"
        else:
            status = "improved" if new > percent else "ok"
        rows.append((model, percent, new, status))
    missing = tuple(sorted(set(base) - set(cand)))
    return RelativeCheck(
        str(baseline["reference"]), tuple(rows), missing, failed or (bool(missing) and not allow_missing)
    )


def relative_summary_markdown(result: RelativeCheck, max_drop: float) -> str:
    """The Markdown summary printed by ``qlora-eval check`` for relative documents."""
    lines = [
        f"## qlora-eval check: % of {result.reference}",
        "",
        f"A model regresses when its percentage drops by more than {max_drop:g} points **and** the candidate's "
        "95% interval lies entirely below the baseline's.",
        "",
        "| model | baseline % | candidate % | change | status |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    lines += [f"| {md_escape(m)} | {b:.1f} | {c:.1f} | {c - b:+.1f} | {s} |" for m, b, c, s in result.rows]
    if result.missing:
        lines += ["", f"missing from the candidate: {md_escape(', '.join(result.missing))}"]
    lines += ["", "**FAILED**" if result.failed else "passed"]
    return "\n".join(lines) + "\n"


def _rows(document: dict[str, Any], source: str) -> dict[str, tuple[float, float, float]]:
    rows = {}
    for index, row in enumerate(document.get("models", [])):
        try:
            rows[str(row["model"])] = (float(row["percent"]), float(row["ci_low"]), float(row["ci_high"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"models[{index}] needs model, percent, ci_low, ci_high ({exc})", source=source) from exc
    return rows

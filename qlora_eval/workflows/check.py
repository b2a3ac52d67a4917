"""The CI regression gate: compare a candidate ranking with a baseline and decide whether a model regressed.

The rule (both must hold for a model to count as regressed):

1. its rating dropped by more than ``max_drop`` points (baseline rating - candidate rating > max drop), and
2. the drop is outside the intervals: the candidate's whole interval lies below the baseline's
   (candidate ``ci_high`` < baseline ``ci_low``), so noise alone is an unlikely explanation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from qlora_eval.errors import ConfigError, InputError, escape_unsafe
from qlora_eval.workflows.document import ModelRow, RankDocument

RULE = (
    "A model regresses when its rating drops by more than {max_drop:g} points **and** the candidate's 95% interval "
    "lies entirely below the baseline's (candidate upper bound < baseline lower bound)."
)


class Status(Enum):
    """What happened to one baseline model."""

    REGRESSED = "REGRESSED"
    DROPPED_WITHIN = "dropped, within intervals"
    IMPROVED = "improved"
    OK = "ok"


@dataclass(frozen=True)
class CheckRow:
    """One baseline model compared with the candidate."""

    model: str
    base: ModelRow
    cand: ModelRow
    status: Status

    @property
    def change(self) -> float:
        """Candidate rating - baseline rating."""
        return self.cand.rating - self.base.rating


@dataclass(frozen=True)
class CheckResult:
    """The gate's verdict.

    Attributes:
        rows: baseline models present in the candidate, best baseline rating first.
        missing: baseline models absent from the candidate.
        new: candidate models absent from the baseline (not compared).
        max_drop: the allowed drop.
        method: the rating method of both documents.
        failed: a model regressed, or one is missing (unless ``allow_missing``).
        differences: how the documents' prompt sets or judges differ (only with ``allow_different``).
    """

    rows: tuple[CheckRow, ...]
    missing: tuple[str, ...]
    new: tuple[str, ...]
    max_drop: float
    method: str
    failed: bool
    differences: tuple[str, ...] = ()

    @property
    def regressed(self) -> list[str]:
        return [r.model for r in self.rows if r.status is Status.REGRESSED]


def compare(
    baseline: RankDocument, candidate: RankDocument, max_drop: float
) -> tuple[list[CheckRow], list[str], list[str]]:
    """Per baseline model: ratings and status; plus models missing from / new in the candidate."""
    cand_rows = {m.model: m for m in candidate.ranking.models}
    base_rows = {m.model: m for m in baseline.ranking.models}
    rows: list[CheckRow] = []
    missing: list[str] = []
    for name, base in sorted(base_rows.items(), key=lambda kv: -kv[1].rating):
        cand = cand_rows.get(name)
        if cand is None:
            missing.append(name)
            continue
        drop = base.rating - cand.rating
        if drop > max_drop and cand.ci_high < base.ci_low:
            status = Status.REGRESSED
        elif drop > max_drop:
            status = Status.DROPPED_WITHIN
        elif -drop > max_drop and cand.ci_low > base.ci_high:
            status = Status.IMPROVED
        else:
            status = Status.OK
        rows.append(CheckRow(name, base, cand, status))
    new = sorted(set(cand_rows) - set(base_rows))
    return rows, missing, new


def load_rank_document(path: str) -> RankDocument:
    """Read a ``rank --json`` file for the gate: every way it can be unreadable is an InputError (exit 2).

    A CI gate must never answer "regressed" (exit 1) for a file it could not read; an unexpected field type
    that slipped past the document's own checks is still the file's fault, so it is named as such.
    """
    try:
        return RankDocument.load(path)
    except InputError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise InputError(
            f"not a usable rank document ({type(exc).__name__}: {exc}); pass a file written by qlora-eval rank --json",
            source=path,
        ) from exc


def validate_max_drop(max_drop: float) -> None:
    """Raises ConfigError unless ``max_drop`` is a finite number >= 0."""
    if not math.isfinite(max_drop) or max_drop < 0:
        raise ConfigError(f"--max-drop must be a number >= 0 (rating points), got {max_drop}")


def differences(baseline: RankDocument, candidate: RankDocument) -> list[str]:
    """How the two rankings' prompt sets and judges differ (empty when they rank the same kind of verdicts)."""
    found = []
    for what, base, cand in (
        ("prompt sets", baseline.prompt_sets, candidate.prompt_sets),
        ("judges", baseline.judges, candidate.judges),
    ):
        if sorted(base) != sorted(cand):
            shown = [", ".join(sorted(x)) or "not recorded" for x in (base, cand)]
            found.append(f"{what}: baseline {shown[0]}, candidate {shown[1]}")
    return found


def check(
    baseline: RankDocument,
    candidate: RankDocument,
    *,
    max_drop: float,
    allow_missing: bool = False,
    allow_different: bool = False,
    candidate_source: str | None = None,
) -> CheckResult:
    """Apply the gate.

    Args:
        baseline: the accepted ranking.
        candidate: the ranking under test.
        max_drop: the allowed rating drop (points).
        allow_missing: a baseline model missing from the candidate is reported, not a failure.
        allow_different: compare rankings of different prompt sets or judges (refused otherwise).
        candidate_source: the candidate's file, for messages.

    Raises:
        ConfigError: a negative or non-finite ``max_drop``, documents of different methods, or (without
            ``allow_different``) of different prompt sets or judges.
        InputError: no baseline model is in the candidate.
    """
    validate_max_drop(max_drop)
    differ = differences(baseline, candidate)
    if differ and not allow_different:
        raise ConfigError(
            "the rankings are of different verdicts (" + "; ".join(differ) + "): their ratings are not comparable. "
            "Rank both on the same prompt sets with the same judges, or pass --allow-different to compare anyway"
        )
    method = baseline.ranking.method
    if method != candidate.ranking.method:
        raise ConfigError(
            f"the baseline was ranked with {method} and the candidate with {candidate.ranking.method}; "
            "ratings of different methods are not comparable: rank both with the same --method"
        )
    rows, missing, new = compare(baseline, candidate, max_drop)
    if not rows:
        raise InputError(
            "no model of the baseline is in the candidate; check that both rank the same models",
            source=candidate_source,
        )
    failed = any(r.status is Status.REGRESSED for r in rows) or (bool(missing) and not allow_missing)
    return CheckResult(tuple(rows), tuple(missing), tuple(new), max_drop, method, failed, tuple(differ))


def md_escape(text: str) -> str:
    """Model names are user text: keep them from breaking the table or injecting markup (or lines: a newline
    in a name could start a fake heading, so control and bidi characters are shown escaped)."""
    escaped = text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return escape_unsafe(escaped.replace("`", "\\`"))


def summary_markdown(result: CheckResult) -> str:
    """The Markdown summary (for the terminal and ``$GITHUB_STEP_SUMMARY``)."""
    regressed = result.regressed
    lines = [f"## qlora-eval check: {'FAIL' if result.failed else 'PASS'}", ""]
    if regressed:
        lines.append(f"**{len(regressed)} model(s) regressed:** " + ", ".join(f"`{md_escape(m)}`" for m in regressed))
    else:
        lines.append("No model regressed.")
    lines += ["", RULE.format(max_drop=result.max_drop) + f" Method: {result.method}.", ""]
    lines.append("| model | baseline | candidate | change | baseline 95% | candidate 95% | status |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in result.rows:
        b, c = r.base, r.cand
        status = f"**{r.status.value}**" if r.status is Status.REGRESSED else r.status.value
        lines.append(
            f"| {md_escape(r.model)} | {b.rating:.1f} | {c.rating:.1f} | {r.change:+.1f} | "
            f"{b.ci_low:.1f} – {b.ci_high:.1f} | {c.ci_low:.1f} – {c.ci_high:.1f} | {status} |"
        )
    if result.missing:
        lines += ["", "**Missing from the candidate:** " + ", ".join(f"`{md_escape(m)}`" for m in result.missing)]
    if result.differences:
        note = "**Compared despite different verdicts (--allow-different):** "
        lines += ["", note + md_escape("; ".join(result.differences))]
    if result.new:
        lines += ["", "New in the candidate (not compared): " + ", ".join(f"`{md_escape(m)}`" for m in result.new)]
    return "\n".join(lines) + "\n"

"""``qlora-eval check``: the CI gate. Compare two ``rank --json`` documents and fail on a real regression.

The rule (both must hold for a model to count as regressed):

1. its rating dropped by more than ``--max-drop`` points (baseline rating - candidate rating > max drop), and
2. the drop is outside the intervals: the candidate's whole interval lies below the baseline's
   (candidate ``ci_high`` < baseline ``ci_low``), so noise alone is an unlikely explanation.

Exit codes: 0 no regression, 1 at least one model regressed (or, with ``--fail-on-missing``, a baseline model
is missing from the candidate), 2 the files cannot be read or compared. A Markdown summary goes to standard
output, and with ``--summary FILE`` is appended to FILE (pass ``$GITHUB_STEP_SUMMARY`` on GitHub Actions).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qlora_eval.errors import ConfigError, InputError

RULE = (
    "A model regresses when its rating drops by more than {max_drop:g} points **and** the candidate's 95% interval "
    "lies entirely below the baseline's (candidate upper bound < baseline lower bound)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", required=True, help="rank --json output of the accepted version")
    parser.add_argument("--candidate", required=True, help="rank --json output of the version under test")
    parser.add_argument("--max-drop", type=float, required=True, metavar="POINTS", help="allowed rating drop")
    parser.add_argument("--summary", default=None, metavar="FILE", help="also append the Markdown summary to FILE")
    parser.add_argument(
        "--fail-on-missing", action="store_true", help="exit 1 when a baseline model is missing from the candidate"
    )


@dataclass(frozen=True)
class Entry:
    """One model's rating and interval from a ranking document."""

    model: str
    rating: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Ranking:
    method: str
    rounds: int | None
    entries: dict[str, Entry]


def load_ranking(path: str) -> Ranking:
    """Read and validate a ``rank --json`` document.

    Raises:
        InputError: unreadable file, not JSON, or missing/ill-typed fields (named).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot read it ({exc.strerror}); pass a file written by qlora-eval rank --json", source=path
        ) from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not JSON ({exc.msg}); expected the output of qlora-eval rank --json", source=path, line=exc.lineno
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("models"), list):
        raise InputError(
            "expected a JSON object with a 'models' list (the output of qlora-eval rank --json)", source=path
        )
    method = document.get("method")
    if method not in ("elo", "bt"):
        raise InputError(f"'method' is {method!r}; expected 'elo' or 'bt'", source=path)
    entries: dict[str, Entry] = {}
    for i, item in enumerate(document["models"]):
        where = f"models[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("model"), str):
            raise InputError(f"{where} needs a 'model' name", source=path)
        values = {}
        for key in ("rating", "ci_low", "ci_high"):
            value = item.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InputError(
                    f"{where} ({item['model']}) field {key!r} is {value!r}; expected a number", source=path
                )
            values[key] = float(value)
        if item["model"] in entries:
            raise InputError(f"{where}: model {item['model']!r} is listed twice", source=path)
        entries[item["model"]] = Entry(item["model"], values["rating"], values["ci_low"], values["ci_high"])
    if not entries:
        raise InputError("the 'models' list is empty", source=path)
    rounds = document.get("rounds")
    return Ranking(method=method, rounds=rounds if isinstance(rounds, int) else None, entries=entries)


def _md(text: str) -> str:
    """Model names are user text: keep them from breaking the table or injecting markup."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("`", "\\`")


def compare(
    baseline: Ranking, candidate: Ranking, max_drop: float
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Per baseline model: ratings, change and status; plus models missing from / new in the candidate."""
    rows: list[dict[str, Any]] = []
    missing: list[str] = []
    for name, base in sorted(baseline.entries.items(), key=lambda kv: -kv[1].rating):
        cand = candidate.entries.get(name)
        if cand is None:
            missing.append(name)
            continue
        drop = base.rating - cand.rating
        outside = cand.ci_high < base.ci_low
        if drop > max_drop and outside:
            status = "REGRESSED"
        elif drop > max_drop:
            status = "dropped, within intervals"
        elif -drop > max_drop and cand.ci_low > base.ci_high:
            status = "improved"
        else:
            status = "ok"
        rows.append({"model": name, "base": base, "cand": cand, "change": cand.rating - base.rating, "status": status})
    new = sorted(set(candidate.entries) - set(baseline.entries))
    return rows, missing, new


def summary_markdown(
    rows: list[dict[str, Any]], missing: list[str], new: list[str], max_drop: float, failed: bool, method: str
) -> str:
    regressed = [r["model"] for r in rows if r["status"] == "REGRESSED"]
    head = "FAIL" if failed else "PASS"
    lines = [f"## qlora-eval check: {head}", ""]
    if regressed:
        lines.append(f"**{len(regressed)} model(s) regressed:** " + ", ".join(f"`{_md(m)}`" for m in regressed))
    else:
        lines.append("No model regressed.")
    lines += ["", RULE.format(max_drop=max_drop) + f" Method: {method}.", ""]
    lines.append("| model | baseline | candidate | change | baseline 95% | candidate 95% | status |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        b, c = r["base"], r["cand"]
        status = f"**{r['status']}**" if r["status"] == "REGRESSED" else r["status"]
        lines.append(
            f"| {_md(r['model'])} | {b.rating:.1f} | {c.rating:.1f} | {r['change']:+.1f} | "
            f"{b.ci_low:.1f} – {b.ci_high:.1f} | {c.ci_low:.1f} – {c.ci_high:.1f} | {status} |"
        )
    if missing:
        lines += ["", "**Missing from the candidate:** " + ", ".join(f"`{_md(m)}`" for m in missing)]
    if new:
        lines += ["", "New in the candidate (not compared): " + ", ".join(f"`{_md(m)}`" for m in new)]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    if not math.isfinite(args.max_drop) or args.max_drop < 0:
        raise ConfigError(f"--max-drop must be a number >= 0 (rating points), got {args.max_drop}")
    baseline = load_ranking(args.baseline)
    candidate = load_ranking(args.candidate)
    if baseline.method != candidate.method:
        raise ConfigError(
            f"the baseline was ranked with {baseline.method} and the candidate with {candidate.method}; "
            "ratings of different methods are not comparable: rank both with the same --method"
        )
    rows, missing, new = compare(baseline, candidate, args.max_drop)
    if not rows:
        raise InputError(
            "no model of the baseline is in the candidate; check that both rank the same models", source=args.candidate
        )
    failed = any(r["status"] == "REGRESSED" for r in rows) or (args.fail_on_missing and bool(missing))
    text = summary_markdown(rows, missing, new, args.max_drop, failed, baseline.method)
    print(text, end="")
    if args.summary is not None:
        with Path(args.summary).open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 1 if failed else 0

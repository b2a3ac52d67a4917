"""Report sections of a tournament: the judge and its diagnostics, the Bradley-Terry table, and a browsable
list of every battle (prompt, both answers, verdicts and the judge's explanations).

All text that came from models, prompts or judges goes through ``esc``; the section bodies are built with the
report's :mod:`~qlora_eval.report.htmlkit` helpers and passed to ``build_report`` as extra sections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qlora_eval.report.data import ReportSection
from qlora_eval.report.htmlkit import esc, html_table
from qlora_eval.types import Answer, Judgment, Prompt, Verdict

if TYPE_CHECKING:
    from qlora_eval.rating import RankingResult

# Styles for the battle browser only (the report's stylesheet covers tables and details already).
_STYLE = """<style>
  .battles details.prompt { border: 1px solid var(--line); border-radius: 8px; padding: 2px 12px; margin: 6px 0; }
  .battles details.prompt[open] { background: #fcfcfd; }
  .battles details.prompt > summary { color: var(--fg); font-size: 14px; }
  .battles .tally { color: var(--muted); font-size: 13px; }
  .battles .answers { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 10px; }
  .battles .answer { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; background: #fff; }
  .battles .answer h4 { margin: 0 0 4px; font-size: 13px; }
  .battles pre { white-space: pre-wrap; word-break: break-word; font-size: 13px; margin: 0;
                 font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
  .battles td pre { max-height: 14em; overflow-y: auto; }
  .battles .question { white-space: pre-wrap; margin: 6px 0 10px; }
  .battles .v-invalid { color: #b3261e; font-weight: 600; }
  .warn { background: #fff6e5; border: 1px solid #f0d9a8; border-radius: 6px; padding: 8px 12px; font-size: 14px; }
</style>"""


@dataclass(frozen=True)
class TemplateInfo:
    """A judge template as the report shows it."""

    name: str
    version: int
    sha256: str


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def judge_section(
    *,
    judge_id: str,
    settings: Mapping[str, Any],
    templates: Sequence[TemplateInfo],
    judging: Mapping[str, Any],
    length_preference: Mapping[str, Any] | None,
    agreements: Sequence[Mapping[str, Any]],
    local: bool,
    position_bias: Mapping[str, Any] | None = None,
    note: str = "",
) -> ReportSection:
    """Which judge, with which prompt templates and settings, what it cost, and its diagnostics.

    ``note`` is the judge kind's own account of how it decides and its known biases (``JudgeKind.report_note``).
    """
    parts = []
    bias_text = ""
    if position_bias is not None and position_bias.get("first_win_rate") is not None:
        bias_text = (
            f" Here the answer shown first won {_pct(position_bias['first_win_rate'])} of its decisive verdicts "
            f"(50% = no bias) and {_pct(position_bias.get('consistency'))} of verdicts survived swapping the order."
        )
    if local:
        parts.append(
            '<p class="warn">These verdicts come from a <strong>small local model</strong> '
            f"(<code>{esc(judge_id)}</code>). {esc(note)}{esc(bias_text)} For real verdicts use an API judge "
            "(<code>--judge openai:gpt-4</code>).</p>"
        )
    else:
        if note:
            parts.append(f"<p>{esc(note)}</p>")
        if bias_text:
            parts.append(f"<p>{esc(bias_text.strip())}</p>")
    facts = [
        ["judge", judge_id],
        *[[f"setting: {k}", str(v)] for k, v in sorted(settings.items())],
        *[[f"template {t.name} v{t.version}", f"sha256 {t.sha256}"] for t in templates],
        ["judgments", f"{judging.get('judgments', 0):,} ({judging.get('new', 0):,} made by this run)"],
        ["judge calls this run", f"{judging.get('requests', 0):,} ({judging.get('reasked', 0):,} re-asked)"],
        ["cost this run", f"${judging.get('cost_usd', 0.0):.4f}"],
    ]
    if judging.get("failed"):
        facts.append(["failed (retried next run)", f"{judging['failed']:,}"])
    if judging.get("not_started"):
        facts.append(["not started (budget)", f"{judging['not_started']:,}"])
    parts.append(html_table(["", ""], facts, css_class="facts"))
    if length_preference is not None:
        ci = length_preference.get("longer_win_ci")
        interval = "" if ci is None else f" (95% interval {_pct(ci[0])} – {_pct(ci[1])})"
        parts.append(
            "<p><strong>Length preference:</strong> the longer answer won "
            f"{esc(_pct(length_preference['longer_win_rate']))}"
            f"{esc(interval)} of {length_preference['decisive']:,} decisive verdicts between answers of different "
            "lengths (50% = no preference).</p>"
        )
    if agreements:
        rows = [
            [
                a["judge_1"],
                a["judge_2"],
                f"{a['shared']:,}",
                _pct(a["agreement"]),
                _pct(a["agreement_without_ties"]),
                _num(a["cohen_kappa"]),
                _num(a["kendall_tau"]),
                _num(a["spearman_rho"]),
            ]
            for a in agreements
        ]
        parts.append('<p class="label">agreement with other judges on the same battles</p>')
        parts.append(
            html_table(
                ["judge", "other judge", "shared", "agree", "agree (no ties)", "Cohen's κ", "Kendall τ", "Spearman ρ"],
                rows,
                numeric=(2, 3, 4, 5, 6, 7),
            )
        )
    return ReportSection(
        "Judge",
        "".join(parts),
        intro="Every pair was judged in both orders; the templates are versioned and their hashes are stored with "
        "every verdict.",
    )


def ranking_table_section(title: str, ranking: RankingResult, *, note: str | None, intro: str) -> ReportSection:
    """A second ranking of the same verdicts (the report's main one is Elo), in the leaderboard's table."""
    from qlora_eval.report.build import leaderboard_table

    body = leaderboard_table(ranking)
    if note:
        body = f'<p class="warn">{esc(note)}</p>' + body
    return ReportSection(title, body, intro=intro)


def _winner(j: Judgment) -> str:
    if j.verdict is Verdict.A:
        return f"{j.model_a} wins"
    if j.verdict is Verdict.B:
        return f"{j.model_b} wins"
    return {Verdict.TIE: "tie", Verdict.BOTH_BAD: "both bad", Verdict.INVALID: "invalid (no verdict)"}[j.verdict]


def battles_section(
    prompts: Sequence[Prompt],
    answers: Mapping[tuple[str, str], Answer],
    judgments: Sequence[Judgment],
    models: Sequence[str],
) -> ReportSection:
    """Every prompt with each model's answer and the judge's verdicts and explanations (folded per prompt)."""
    by_prompt: dict[str, list[Judgment]] = {}
    for j in judgments:
        by_prompt.setdefault(j.prompt_id, []).append(j)
    blocks = [_STYLE, '<div class="battles">']
    for prompt in prompts:
        verdicts = sorted(by_prompt.get(prompt.prompt_id, []), key=lambda j: (min(j.model_a, j.model_b), j.order.value))
        if not verdicts:
            continue
        wins: dict[str, int] = {}
        for j in verdicts:
            if j.verdict in (Verdict.A, Verdict.B):
                winner = j.model_a if j.verdict is Verdict.A else j.model_b
                wins[winner] = wins.get(winner, 0) + 1
        tally = ", ".join(f"{m} {wins.get(m, 0)}" for m in models)
        question = prompt.question
        short = question if len(question) <= 110 else question[:107] + "…"
        category = f" [{prompt.category}]" if prompt.category else ""
        answer_html = "".join(
            f'<div class="answer"><h4>{esc(m)}</h4><pre>{esc(answers[(m, prompt.prompt_id)].text)}</pre></div>'
            for m in models
            if (m, prompt.prompt_id) in answers
        )
        rows = []
        for j in verdicts:
            css = ' class="v-invalid"' if j.verdict is Verdict.INVALID else ""
            rows.append(
                f"<tr><td>{esc(j.model_a)}</td><td>{esc(j.model_b)}</td><td{css}>{esc(_winner(j))}</td>"
                f"<td><pre>{esc(j.rationale)}</pre></td></tr>"
            )
        table = (
            '<div class="table-wrap"><table class="data"><thead><tr><th>shown first</th><th>shown second</th>'
            "<th>verdict</th><th>judge's explanation</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table></div>"
        )
        blocks.append(
            f'<details class="prompt"><summary><strong>{esc(prompt.prompt_id)}</strong>{esc(category)} '
            f'{esc(short)} <span class="tally">— wins: {esc(tally)}</span></summary>'
            f'<p class="question">{esc(question)}</p><div class="answers">{answer_html}</div>{table}</details>'
        )
    blocks.append("</div>")
    return ReportSection(
        "Battles",
        "".join(blocks),
        intro="Click a prompt to see every model's answer and each verdict with the judge's explanation "
        "(both presentation orders).",
    )

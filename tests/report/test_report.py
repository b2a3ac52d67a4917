"""The HTML report: every section present, extra sections, escaping of hostile names, self-contained."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from qlora_eval.rating import RatingMethod, rank_battles
from qlora_eval.report import InputFile, ReportData, ReportSection, RunMetadata, build_report, write_report
from qlora_eval.report.htmlkit import esc, html_table
from qlora_eval.types import Battle, Verdict

HOSTILE = "<script>alert(1)</script>"
DOLLAR = "cost$1 $x^2$ {braces}"


def battles() -> list[Battle]:
    models = ["guanaco-7b", HOSTILE, DOLLAR, "a" * 60]
    rng = np.random.default_rng(0)
    out = []
    for p in range(12):
        for i, a in enumerate(models):
            for b in models[i + 1 :]:
                for first, second in ((a, b), (b, a)):
                    verdict = [Verdict.A, Verdict.B, Verdict.TIE, Verdict.INVALID][int(rng.integers(0, 4))]
                    out.append(Battle(first, second, verdict, prompt_id=f"vicuna/{p}", judge="gpt-4"))
    return out


@pytest.fixture(scope="module")
def data() -> ReportData:
    ranking = rank_battles(battles(), RatingMethod.ELO, 200, np.random.default_rng(0))
    metadata = RunMetadata(
        created_at="2024-05-01T12:00:00+00:00",
        seed=0,
        command=f"qlora-eval rank --models '{HOSTILE}'",
        judges=("gpt-4",),
        inputs=(InputFile(f"/tmp/{HOSTILE}.jsonl", "ab" * 32, 10),),
        versions={"qlora-eval": "0.1.0"},
    )
    extra = (
        ReportSection.table("MMLU", ["model", "accuracy"], [[HOSTILE, "0.391"]], numeric=(1,), intro="5-shot"),
        ReportSection("Judge diagnostics", "<p>trusted <em>html</em></p>"),
    )
    return ReportData(title=f"Report {HOSTILE}", ranking=ranking, metadata=metadata, sections=extra, subtitle="sub")


@pytest.fixture(scope="module")
def html(data: ReportData) -> str:
    return build_report(data)


def test_every_section_is_there_in_order(html: str) -> None:
    titles = re.findall(r"<h2>(.*?)</h2>", html)
    assert titles == [
        "Leaderboard",
        "Rating intervals",
        "Rating distribution",
        "Head to head",
        "Judge position bias",
        "Invalid verdicts",
        "MMLU",
        "Judge diagnostics",
        "Run metadata",
    ]
    for slug in ("s-leaderboard", "s-mmlu", "s-judge-diagnostics", "s-run-metadata"):
        assert f'href="#{slug}"' in html and f'id="{slug}"' in html
    assert html.count("data:image/svg+xml;base64,") == 6  # forest, distribution, 3 heatmaps, bias
    assert "<p>trusted <em>html</em></p>" in html


def test_hostile_names_are_escaped_everywhere(html: str) -> None:
    assert HOSTILE not in html
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert DOLLAR in html  # "$" is shown literally (mathtext is off in the plots)


def test_report_is_self_contained(html: str) -> None:
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert "<link" not in html


def test_metadata_and_counts_are_shown(data: ReportData, html: str) -> None:
    assert f"<strong>{data.ranking.invalid:,}</strong>" in html
    assert "ab" * 32 in html and "2024-05-01T12:00:00+00:00" in html
    assert esc("qlora-eval rank --models '") in html


def test_duplicate_anchor_is_refused(data: ReportData) -> None:
    clash = ReportData(data.title, data.ranking, data.metadata, sections=(ReportSection("Leaderboard", "<p></p>"),))
    with pytest.raises(ValueError, match="distinct anchors"):
        build_report(clash)
    assert ReportSection("Leaderboard", "", anchor="MMLU board").slug == "s-mmlu-board"


def test_html_table_escapes_and_checks_width() -> None:
    table = html_table(["<b>"], [["<i>x</i>"]])
    assert "<b>" not in table and "&lt;i&gt;x&lt;/i&gt;" in table
    with pytest.raises(ValueError, match="2 cells"):
        html_table(["one"], [["a", "b"]])


def test_write_report_and_bt(tmp_path: Path) -> None:
    ranking = rank_battles(battles(), RatingMethod.BT, 50, np.random.default_rng(1), prior=1.0)
    path = write_report(ReportData("BT", ranking, RunMetadata(created_at="now")), tmp_path / "r.html")
    text = path.read_text()
    assert "bootstrap rounds" in text and "Bradley-Terry ratings" in text


@pytest.mark.browser
def test_report_renders_in_chromium(html: str, tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("needs /usr/bin/chromium (apt-get install chromium)")
    path = tmp_path / "report.html"
    path.write_text(html)
    args = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(path.as_uri())
        images = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        browser.close()
    assert dialogs == []
    assert len(images) == 6 and all(done and width > 0 for done, width in images)
    assert overflow <= 0  # nothing sticks out sideways at a laptop width

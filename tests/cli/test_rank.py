"""``qlora-eval rank`` on files and on a store: JSON document, leaderboard, HTML, filters, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qlora_eval.interchange.base import sha256_file
from tests.cli.helpers import run_cli, write_tournament


@pytest.fixture
def reviews(tmp_path: Path) -> Path:
    return write_tournament(tmp_path / "reviews", prompts=20)


def test_rank_files_writes_json_and_prints_leaderboard(
    reviews: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "rank.json"
    code, out, _ = run_cli(
        capsys, "rank", str(reviews), "--format", "qlora", "--rounds", "300", "--seed", "3", "--json", str(out_json)
    )
    assert code == 0
    doc = json.loads(out_json.read_text())
    assert (doc["method"], doc["rounds"], doc["seed"]) == ("elo", 300, 3)
    assert doc["battles"] + doc["invalid"] == 12 * 20 and doc["invalid"] > 0
    assert [m["model"] for m in doc["models"]] == ["alpha", "bravo", "charlie", "delta"]
    ratings = [m["rating"] for m in doc["models"]]
    assert ratings == sorted(ratings, reverse=True)
    assert set(doc["models"][0]) >= {"model", "rating", "se", "ci_low", "ci_high", "rank", "wins", "losses", "ties"}
    assert "first_win_rate" in doc["bias"] and doc["judges"] == ["gpt-4"]
    files = sorted(reviews.glob("*.jsonl"))
    assert [i["sha256"] for i in doc["inputs"]] == [sha256_file(f) for f in files]
    assert "--seed 3" in doc["command"] and len(doc["data_sha256"]) == 64
    lines = out.splitlines()
    assert lines[0].startswith("Elo ratings over 300 orderings of")
    assert any(line.split()[1:2] == ["alpha"] for line in lines if line.strip())
    assert "position bias" in out


def test_rank_same_seed_same_numbers_and_store_equals_files(
    reviews: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "s.db")
    assert run_cli(capsys, "import", str(reviews), "--format", "qlora", "--db", db)[0] == 0
    docs = []
    for args in (
        [str(reviews), "--format", "qlora"],
        [str(reviews), "--format", "qlora"],
        ["--db", db],
    ):
        path = tmp_path / f"r{len(docs)}.json"
        assert run_cli(capsys, "rank", *args, "--method", "bt", "--rounds", "100", "--json", str(path))[0] == 0
        docs.append(json.loads(path.read_text()))
    assert docs[0]["models"] == docs[1]["models"]
    assert docs[0]["data_sha256"] == docs[2]["data_sha256"]
    # The store returns the same verdicts in another order; BT's point estimate does not depend on order.
    for a, b in zip(docs[0]["models"], docs[2]["models"], strict=True):
        assert a["model"] == b["model"] and a["rating"] == pytest.approx(b["rating"], abs=1e-6)
    assert docs[2]["inputs"][0]["path"] == db


def test_rank_html_report_from_store(reviews: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.db")
    run_cli(capsys, "import", str(reviews), "--format", "qlora", "--db", db)
    html = tmp_path / "report.html"
    code, _, err = run_cli(capsys, "rank", "--db", db, "--rounds", "200", "--html", str(html), "--title", "T&T")
    assert code == 0 and f"wrote {html}" in err
    text = html.read_text()
    assert "<title>T&amp;T</title>" in text and "Leaderboard" in text and "data:image/svg+xml;base64," in text


def test_rank_filters(reviews: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    code, _, _ = run_cli(
        capsys, "rank", str(reviews), "--format", "qlora", "--models", "alpha", "delta", "--rounds", "50",
        "--json", str(path), "--judge", "gpt-4",
    )  # fmt: skip
    assert code == 0 and [m["model"] for m in json.loads(path.read_text())["models"]] == ["alpha", "delta"]
    code, _, err = run_cli(capsys, "rank", str(reviews), "--format", "qlora", "--judge", "claude")
    assert code == 2 and "no verdicts by judge(s) claude; known judges: gpt-4" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to rank"),
        (["REVIEWS"], "needs --format"),
        (["REVIEWS", "--format", "qlora", "--db", "x.db"], "either INPUT files or --db"),
        (["--db", "missing.db"], "no store here"),
        (["REVIEWS", "--format", "qlora", "--rounds", "1"], "rounds must be at least 2"),
        (["REVIEWS", "--format", "qlora", "--json", "/no/such/dir/r.json"], "does not exist"),
    ],
)
def test_rank_usage_errors(reviews: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    argv = [str(reviews) if a == "REVIEWS" else a for a in args]
    code, _, err = run_cli(capsys, "rank", *argv)
    assert code == 2 and message in err


def test_rank_does_not_import_heavy_packages(reviews: Path) -> None:
    """A plain rank (no --html) must not pay for matplotlib, pandas, scipy.optimize's friends or torch."""
    code = (
        "import sys; from qlora_eval.cli.main import main; "
        f"rc = main(['rank', {str(reviews)!r}, '--format', 'qlora', '--rounds', '20']); "
        "heavy = [m for m in ('matplotlib', 'pandas', 'torch', 'transformers', 'jinja2') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in result.stdout

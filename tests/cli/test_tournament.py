"""``qlora-eval tournament`` on the command line: usage errors, the paper setup's dry run, the reduced demo (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlora_eval.cli.main import main
from qlora_eval.config import load_tournament_config

REPO = Path(__file__).resolve().parents[2]


def test_cli_needs_config_or_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tournament"]) == 2
    assert "--config tournaments/NAME.yaml or --models" in capsys.readouterr().err


def test_dry_run_of_the_paper_setup_prices_gpt4(capsys: pytest.CaptureFixture[str]) -> None:
    shared = REPO.parent / "shared" / "data"
    if not (shared / "vicuna_questions.jsonl").is_file():
        pytest.skip("the Vicuna prompts are not available offline here")
    code = main(
        [
            "tournament",
            "--config",
            str(REPO / "tournaments" / "guanaco-vicuna.yaml"),
            "--data-dir",
            str(shared),
            "--dry-run",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "3 models x 80 prompts" in out and "480 judge calls by openai:gpt-4" in out
    assert "estimated cost: at most $" in out


@pytest.mark.slow
def test_reduced_demo_with_smollm2(tmp_path: Path) -> None:
    """The demo config with 2 prompts and 8-token answers: real SmolLM2 (fp32, NF4, greedy, broken) and the
    position-free likelihood judge."""
    demo = load_tournament_config(REPO / "tournaments" / "demo.yaml")
    code = main(
        [
            "tournament",
            "--config",
            str(REPO / "tournaments" / "demo.yaml"),
            "--limit",
            "2",
            "--max-new-tokens",
            "8",
            "--rounds",
            "50",
            "--db",
            str(tmp_path / "d.db"),
            "--html",
            str(tmp_path / "d.html"),
            "--json",
            str(tmp_path / "d.json"),
            "--no-progress",
        ]
    )
    assert code == 0
    document = json.loads((tmp_path / "d.json").read_text())
    assert document["judge"] == "local-likelihood:smollm2-135m" and document["judging"]["new"] == 2 * 6 * 2
    models = {m["model"] for m in document["elo"]["models"]}
    assert models == {"smollm2-fp32", "smollm2-nf4", "smollm2-greedy", "smollm2-broken"}
    assert document["elo"]["invalid"] == 0  # a likelihood judge never fails to parse
    html = (tmp_path / "d.html").read_text()
    assert "small local model" in html and "mean log-probability" in html and "generic" in html
    assert len(demo.models) == 4

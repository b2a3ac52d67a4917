"""Tournament YAML: judge.templates (qlora-eval | qlora-paper) and judge.reuse_imported reach the judge options."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlora_eval.config import load_tournament_config
from qlora_eval.errors import ConfigError
from qlora_eval.workflows.tournament import judge_options

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, judge: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(f"models: [a, b]\nprompts: {{name: vicuna, data_dir: /data}}\njudge: {judge}\n")
    return path


def test_templates_and_reuse_reach_the_options(tmp_path: Path) -> None:
    config = load_tournament_config(
        _write(tmp_path, '{spec: "openai:gpt-4", templates: qlora-paper, reuse_imported: gpt-4, temperature: 0.2}')
    )
    options = judge_options(config)
    assert (options.judge_templates, options.reuse_imported, options.data_dir) == (
        "qlora-paper",
        "gpt-4",
        Path("/data"),
    )
    assert options.temperature == 0.2


def test_unknown_template_set_is_refused_with_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"judge\.templates.*qlora-eval or qlora-paper"):
        load_tournament_config(_write(tmp_path, '{spec: "openai:gpt-4", templates: paper}'))


def test_the_paper_setup_uses_the_papers_templates() -> None:
    config = load_tournament_config(REPO / "tournaments" / "guanaco-vicuna.yaml")
    assert config.judge.templates == "qlora-paper" and config.judge.temperature == 0.2


def test_dry_run_says_how_many_calls_reuse_saves(
    tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from tests.cli.helpers import run_cli

    reviews = tmp_path / "reviews"
    reviews.mkdir()
    rows = [json.dumps({"question_id": q, "text": "r\n1", "score": 1}) for q in range(1, 11)]
    (reviews / "m1-vs-m2-gpt-4-reviewer-threeclass.jsonl").write_text("\n".join(rows) + "\n")
    db = tmp_path / "t.db"
    assert run_cli(capsys, "import", str(reviews), "--format", "qlora", "--db", str(db))[0] == 0
    config = tmp_path / "t.yaml"
    config.write_text(
        f"db: {db}\nmodels: ['smollm2-135m?name=m1', 'smollm2-135m?name=m2']\n"
        f"prompts: {{name: vicuna, data_dir: {shared_data}}}\n"
        "judge: {spec: 'openai:gpt-4', templates: qlora-paper, reuse_imported: gpt-4}\n"
    )
    code, out, err = run_cli(capsys, "tournament", "--config", str(config), "--dry-run")
    assert code == 0, err
    assert "160 judge calls" in out and "reuse of imported verdicts saves 10 calls" in out

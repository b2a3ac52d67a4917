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

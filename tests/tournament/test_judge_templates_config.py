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
    # The review file names no answer keys: its verdicts are about the paper's imported answers, not the ones
    # this tournament generates, so they save nothing (they used to count, and the new answers went unjudged).
    code, out, err = run_cli(capsys, "tournament", "--config", str(config), "--dry-run")
    assert code == 0, err
    assert "160 judge calls" in out and "reuse of imported verdicts" not in out
    # Verdicts naming the answers the tournament would judge (spec, prompt text and settings) do count.
    from qlora_eval.config import load_tournament_config as load
    from qlora_eval.prompts import load_prompt_set
    from qlora_eval.store import Store
    from qlora_eval.types import Answer, Judgment, Order, Verdict
    from qlora_eval.workflows.tournament import resolve_models

    (m1, s1), (m2, s2) = resolve_models(load(config))
    keyed = [
        Judgment(
            judge="gpt-4", model_a="m1", model_b="m2", prompt_set="vicuna", prompt_id=p.prompt_id,
            verdict=Verdict.A, order=Order.FORWARD,
            answer_a_key=Answer.key_for("m1", m1.text, "vicuna", p.prompt_id, p.content_hash, s1.to_dict()),
            answer_b_key=Answer.key_for("m2", m2.text, "vicuna", p.prompt_id, p.content_hash, s2.to_dict()),
        )
        for p in load_prompt_set("vicuna", data_dir=shared_data).prompts[:10]
    ]  # fmt: skip
    with Store(db) as store:
        store.add_judgments(keyed)
    code, out, err = run_cli(capsys, "tournament", "--config", str(config), "--dry-run")
    assert code == 0, err
    assert "160 judge calls" in out and "reuse of imported verdicts saves 10 calls" in out

"""The fit options reach the user: ``rank``/``tournament`` flags, the tournament YAML ``rating:`` mapping, the rank
document (options used, adjustments), and errors that name flags which exist."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pytest

from qlora_eval.cli import tournament_cmd
from qlora_eval.cli.main import main
from qlora_eval.config import RatingConfig, load_tournament_config
from qlora_eval.errors import ConfigError
from qlora_eval.workflows.document import RankDocument
from tests.cli.helpers import run_cli, write_tournament
from tests.judge.conftest import MODELS, fill_store
from tests.judge.fake_openai import FakeOpenAI, default_reply


@pytest.fixture
def reviews(tmp_path: Path) -> Path:
    return write_tournament(tmp_path / "reviews", prompts=20)


def _flags_exist(message: str, parser_argv: list[str]) -> None:
    """Every --flag named in an error message is an option of the command."""
    parser = argparse.ArgumentParser()
    from qlora_eval.cli import rank_cmd

    rank_cmd.add_arguments(parser)
    known = {s for a in parser._actions for s in a.option_strings}
    named = {w.strip(".,;:()'\"") for w in message.split() if w.startswith("--")}
    assert named and named <= known, named - known


def test_rank_records_the_fit_options_and_the_position_advantage(
    reviews: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bt.json"
    argv = ["rank", str(reviews), "--format", "qlora", "--method", "bt", "--rounds", "50", "--json", str(out)]
    code, _, _ = run_cli(capsys, *argv, "--position-bias", "on", "--ties", "davidson", "--anchor", "alpha=1200")
    assert code == 0
    document = RankDocument.load(out)
    fit = document.ranking.parameters["fit"]
    assert fit == {
        "method": "bt",
        "ties": "davidson",
        "prior": 0.0,
        "anchor": {"model": "alpha", "rating": 1200.0},
        "position_bias": "on",
        "control": [],
    }
    alpha = document.ranking.rating_of("alpha")
    assert alpha.rating == pytest.approx(1200.0) and alpha.ci_low < 1200.0 < alpha.ci_high  # honest interval
    assert document.ranking.adjustments is not None
    assert set(document.ranking.adjustments["position_advantage"]) == {"name", "elo", "se", "ci_low", "ci_high"}
    assert "--position-bias on" in (document.command or "")


def test_elo_defaults_to_bootstrap_intervals(reviews: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "elo.json"
    code, _, _ = run_cli(capsys, "rank", str(reviews), "--format", "qlora", "--rounds", "100", "--json", str(out))
    assert code == 0
    parameters = json.loads(out.read_text())["parameters"]
    assert parameters["intervals"] == "bootstrap" and parameters["fit"] == {
        "method": "elo",
        "elo_intervals": "bootstrap",
    }
    code, _, _ = run_cli(
        capsys, "rank", str(reviews), "--format", "qlora", "--rounds", "100", "--elo-intervals", "orderings"
    )
    assert code == 0


def test_bt_only_flags_with_elo_are_refused_by_name(reviews: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "rank", str(reviews), "--format", "qlora", "--prior", "1", "--control", "length")
    assert code == 2 and "--prior, --control apply to Bradley-Terry only" in err
    _flags_exist(err, [])


def test_unbounded_fit_error_names_prior_and_prior_fixes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "sweep"
    folder.mkdir()
    # alpha wins every review: its Bradley-Terry rating is unbounded.
    for first, second, score in (
        ("alpha", "beta", 1),
        ("beta", "alpha", 2),
        ("beta", "gamma", 3),
        ("gamma", "beta", 3),
    ):
        lines = [json.dumps({"question_id": q, "text": "r", "score": score}) for q in range(1, 6)]
        (folder / f"{first}-vs-{second}-gpt-4-reviewer-threeclass.jsonl").write_text("\n".join(lines) + "\n")
    argv = ["rank", str(folder), "--format", "qlora", "--method", "bt", "--rounds", "20"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "--prior 1" in err
    _flags_exist(err.split("To rate anyway:")[1], [])
    code, _, _ = run_cli(capsys, *argv, "--prior", "1")
    assert code == 0


def _mostly_longer(request: dict[str, object]) -> str:
    """The longer answer wins, except on one prompt in three (so length does not decide every verdict)."""
    reply = default_reply(request)
    text = str(request["messages"])
    if hash_of(text) % 3 == 0 and reply.endswith(("1", "2")):
        return reply[:-1] + ("2" if reply.endswith("1") else "1")
    return reply


def hash_of(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


def test_style_control_needs_answers_and_works_on_a_store(
    reviews: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "rank", str(reviews), "--format", "qlora", "--method", "bt", "--control", "length")
    assert code == 2 and "needs the text of both answers" in err and "drop --control" in err
    db = tmp_path / "s.db"
    fill_store(db, n_prompts=8)
    with FakeOpenAI(reply=_mostly_longer) as fake:
        judge = f"openai:fake-judge?base_url={fake.base_url}"
        assert main(["judge", "--db", str(db), "--models", *MODELS, "--judge", judge, "--no-progress"]) == 0
    out = tmp_path / "style.json"
    argv = ["rank", "--db", str(db), "--method", "bt", "--rounds", "30", "--prior", "1", "--json", str(out)]
    code, _, err = run_cli(capsys, *argv, "--control", "length,markdown")
    assert code == 0, err
    adjustments = RankDocument.load(out).ranking.adjustments
    assert adjustments is not None and adjustments["style"] is not None
    names = [c["name"] for c in adjustments["style"]["coefficients"]]
    # No stored answer has markdown: those covariates carry no information and are left out, by name.
    assert names == ["length"]
    assert adjustments["style"]["dropped"] == ["markdown_headers", "markdown_list_items", "markdown_bold"]
    assert {m["model"] for m in adjustments["style"]["models"]} == set(MODELS)
    # The fake judge prefers the longer answer, so the length coefficient is large and positive.
    assert adjustments["style"]["coefficients"][0]["elo"] > 100
    # Imports that link verdicts to answers work too: export both from the store, import into a fresh one.
    answers, verdicts, fresh = tmp_path / "answers.jsonl", tmp_path / "verdicts.jsonl", tmp_path / "fresh.db"
    assert main(["export", "--db", str(db), "--what", "answers", "--format", "jsonl", "-o", str(answers)]) == 0
    assert main(["export", "--db", str(db), "--what", "judgments", "--format", "jsonl", "-o", str(verdicts)]) == 0
    assert main(["import", str(answers), "--format", "jsonl", "--db", str(fresh)]) == 0
    assert main(["import", str(verdicts), "--format", "jsonl", "--db", str(fresh)]) == 0
    imported = tmp_path / "imported.json"
    argv[argv.index("--db") + 1] = str(fresh)
    argv[argv.index("--json") + 1] = str(imported)
    code, _, err = run_cli(capsys, *argv, "--control", "length,markdown")
    assert code == 0, err
    again = RankDocument.load(imported).ranking.adjustments
    assert again is not None and again["style"]["models"] == adjustments["style"]["models"]


def test_tournament_yaml_rating_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "models: [a, b]\nrating: {ties: davidson, prior: 2, position-bias: on, control: 'length', anchor: a=900}\n"
    )
    config = load_tournament_config(path)
    assert config.rating == RatingConfig("bootstrap", "davidson", 2.0, "a=900", True, ("length",))
    path.write_text("models: [a, b]\nrating: {ties: thirds}\n")
    with pytest.raises(ConfigError, match=r"rating\.ties"):
        load_tournament_config(path)
    path.write_text("models: [a, b]\nrating: {colour: red}\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_tournament_config(path)
    parser = argparse.ArgumentParser()
    tournament_cmd.add_arguments(parser)
    path.write_text("models: [a, b]\nrating: {ties: davidson}\n")
    args = parser.parse_args(["--config", str(path), "--position-bias", "on", "--elo-intervals", "orderings"])
    rating = tournament_cmd.config_from_args(args).rating
    assert (rating.ties, rating.position_bias, rating.elo_intervals) == ("davidson", True, "orderings")

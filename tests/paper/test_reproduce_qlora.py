"""Reproduce the QLoRA paper from ``../shared/data/qlora`` alone, through the CLI.

Imports the paper's generation files and its two relative-review files, computes Guanaco-7B's "% of ChatGPT",
judges pairs with the paper's own reviewer prompts against a fake OpenAI-compatible server (the prompt must be
byte for byte what ``eval/eval_gpt_review.py`` builds), produces relative judgments with ``--protocol
relative``, reuses imported GPT-4 verdicts, and refuses typos.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import run_cli
from tests.judge.fake_openai import FakeOpenAI

GUANACO_7B = "7b-guanaco-vicuna-generations-topp0.9-temp0.7"
CUT = "A chat between a curious human and an artificial intelligence"


@pytest.fixture(scope="module")
def paper(shared_data: Path) -> Path:
    folder = shared_data / "qlora"
    if not (folder / "generations" / "vicuna").is_dir():
        pytest.skip(f"the QLoRA paper files are not at {folder}")
    return folder


@pytest.fixture()
def db(tmp_path: Path, paper: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "paper.db"
    code, out, err = run_cli(
        capsys, "import", str(paper / "generations" / "vicuna"), "--format", "qlora-generations",
        "--prompt-set", "vicuna", "--data-dir", str(shared_data), "--db", str(path),
    )  # fmt: skip
    assert code == 0, err
    assert "answers: 640 new" in out  # 8 models x 80 prompts
    return path


def _paper_reply(request: dict[str, Any]) -> str:
    """A reviewer that prefers the longer answer, reading the paper's prompt layout (not ours)."""
    user = request["messages"][1]["content"]
    first = user.split("[The Start of Assistant 1's Answer]\n", 1)[1].split("\n\n[The End of Assistant 1's", 1)[0]
    second = user.split("[The Start of Assistant 2's Answer]\n", 1)[1].split("\n\n[The End of Assistant 2's", 1)[0]
    if "1 to 10" in user or "1-10" in user:  # the relative prompts (general, coding, math)
        return ("8 6" if len(first) >= len(second) else "6 8") + "\nThe longer answer is more detailed."
    return "The longer answer is more detailed.\n" + ("1" if len(first) > len(second) else "2")


def _expected_user_message(paper: Path, shared_data: Path, question_id: int, first: str, second: str) -> str:
    """What eval_gpt_review.py's gen_prompt builds for Vicuna question ``question_id`` (general/coding/math)."""
    questions = {json.loads(x)["question_id"]: json.loads(x) for x in (shared_data / "vicuna_questions.jsonl").open()}
    question = questions[question_id]
    reviewers = [json.loads(x) for x in (paper / "judge-prompts" / "reviewer.jsonl").open()]
    prompts = [json.loads(x) for x in (paper / "judge-prompts" / "vicuna_prompt_threeclass.jsonl").open()]
    index = next((i for i, r in enumerate(reviewers) if r["category"] == question["category"]), 0)
    row = prompts[reviewers[index]["prompt_id"] - 1]

    def answer(path: Path) -> str:
        found = next(json.loads(x) for x in path.open() if json.loads(x)["question_id"] == question_id)
        if "generation_truncated" in found:
            return str(found["generation_truncated"]).split(CUT)[0]
        return str(found["text"])

    vicuna = paper / "generations" / "vicuna"
    return str(row["prompt_template"]).format(
        question=question["text"],
        answer_1=answer(vicuna / f"{first}.jsonl"),
        answer_2=answer(vicuna / f"{second}.jsonl"),
        **row["defaults"],
    )


def test_relative_files_give_the_papers_percentage(db: Path, paper: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "import", str(paper / "relative-gpt-3.5"), "--format", "qlora-relative", "--db", str(db)
    )
    assert code == 0 and "relative judgments: 160 new" in out
    out_json = db.parent / "relative.json"
    code, out, _ = run_cli(
        capsys, "rank", "--db", str(db), "--method", "relative", "--reference", "answer-gpt35", "--json", str(out_json)
    )
    (row,) = json.loads(out_json.read_text())["models"]
    assert code == 0 and row["model"] == GUANACO_7B and round(row["percent"], 2) == 86.97
    # The report: the table and the plot.
    html = db.parent / "relative.html"
    code, _, err = run_cli(
        capsys, "rank", "--db", str(db), "--method", "relative", "--reference", "answer-gpt35", "--html", str(html)
    )
    page = html.read_text()
    assert code == 0, err
    assert "% of answer-gpt35" in page and "87.0%" in page and "data:image/svg+xml;base64," in page
    # check reads relative documents: the same file passes; a candidate 20 points lower with a disjoint interval fails.
    code, out, _ = run_cli(
        capsys, "check", "--baseline", str(out_json), "--candidate", str(out_json), "--max-drop", "1"
    )
    assert code == 0 and "passed" in out
    worse = json.loads(out_json.read_text())
    worse["models"][0].update(percent=row["percent"] - 20, ci_low=row["ci_low"] - 20, ci_high=row["ci_low"] - 1)
    worse_path = db.parent / "worse.json"
    worse_path.write_text(json.dumps(worse))
    code, out, _ = run_cli(
        capsys, "check", "--baseline", str(out_json), "--candidate", str(worse_path), "--max-drop", "5"
    )
    assert code == 1 and "REGRESSED" in out


def test_paper_templates_against_a_fake_server_send_the_papers_prompt(
    db: Path, paper: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAI(reply=_paper_reply) as fake:
        code, out, err = run_cli(
            capsys, "judge", "--db", str(db), "--models", GUANACO_7B, "answer-gpt35",
            "--judge", f"openai:gpt-4?base_url={fake.base_url}", "--judge-templates", "qlora-paper",
            "--data-dir", str(paper), "--temperature", "0.2", "--no-progress",
        )  # fmt: skip
    assert code == 0, err
    assert fake.calls == 160  # 80 prompts x both orders
    system = json.loads((paper / "judge-prompts" / "vicuna_prompt_threeclass.jsonl").open().readline())["system_prompt"]
    by_key = {}
    for request in fake.requests:
        assert request["messages"][0] == {"role": "system", "content": system}
        assert request["temperature"] == 0.2
        by_key[request["messages"][1]["content"]] = request
    # Questions 1 (generic), 63 (coding) and 61 (math), Guanaco shown first and ChatGPT first: exactly the paper's.
    for question_id in (1, 61, 63):
        for first, second in ((GUANACO_7B, "answer_gpt35"), ("answer_gpt35", GUANACO_7B)):
            assert _expected_user_message(paper, shared_data, question_id, first, second) in by_key
    assert "160/160 judgments stored (160 new" in out and "0 invalid" in out


def test_relative_protocol_with_any_judge_is_scored_by_rank(
    db: Path, paper: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAI(reply=_paper_reply) as fake:
        argv = [
            "judge", "--db", str(db), "--models", "13b-guanaco-vicuna-generations-topp0.9-temp0.7", "answer-gpt35",
            "--judge", f"openai:judge-x?base_url={fake.base_url}", "--protocol", "relative",
            "--reference", "answer-gpt35", "--judge-templates", "qlora-paper", "--data-dir", str(paper),
            "--no-progress",
        ]  # fmt: skip
        code, out, err = run_cli(capsys, *argv)
        assert code == 0, err
        assert fake.calls == 160 and "160/160 relative judgments stored (160 new" in out
        systems = [r["messages"][1]["content"].split("[System]\n", 1)[1] for r in fake.requests]
        assert all("1 to 10" in s or "1-10" in s for s in systems)  # the paper's relative prompts
        code, out, _ = run_cli(capsys, *argv)  # never pays twice
        assert code == 0 and fake.calls == 160 and "160 already stored" in out
    out_json = db.parent / "rel.json"
    code, _, err = run_cli(
        capsys, "rank", "--db", str(db), "--method", "relative", "--reference", "answer-gpt35",
        "--judge", "openai:judge-x", "--json", str(out_json),
    )  # fmt: skip
    assert code == 0, err
    (row,) = json.loads(out_json.read_text())["models"]
    assert row["calls"] == 160 and row["invalid"] == 0 and 50 < row["percent"] < 150


def test_reuse_imported_gpt4_verdicts_pays_only_for_new_pairs(
    db: Path, paper: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A review file in the repository's layout (shown-first answers' name first), 10 prompts.
    reviews = tmp_path / "reviews"
    reviews.mkdir()
    lines = [json.dumps({"question_id": q, "text": "review\n1", "score": 1}) for q in range(1, 11)]
    (reviews / f"{GUANACO_7B}-vs-answer-gpt35-gpt-4-reviewer-threeclass.jsonl").write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(capsys, "import", str(reviews), "--format", "qlora", "--db", str(db))
    assert code == 0, err
    with FakeOpenAI(reply=_paper_reply) as fake:
        base = [
            "judge", "--db", str(db), "--models", GUANACO_7B, "answer-gpt35", "--judge-templates", "qlora-paper",
            "--judge", f"openai:gpt-4-new?base_url={fake.base_url}", "--data-dir", str(paper),
            "--reuse-imported", "gpt-4", "--no-progress",
        ]  # fmt: skip
        dry = tmp_path / "dry.json"
        code, out, _ = run_cli(capsys, *base, "--dry-run", "--json", str(dry))
        assert code == 0 and "reuse of imported verdicts saves 10 calls" in out
        figures = json.loads(dry.read_text())
        assert (figures["planned"], figures["reused_imported"], figures["calls"]) == (160, 10, 150)
        code, out, _ = run_cli(capsys, *base)
        assert code == 0 and fake.calls == 150
        typo = [("gpt4" if a == "gpt-4" else a) for a in base]
        code, _, err = run_cli(capsys, *typo, "--dry-run")
    assert code == 2 and "--reuse-imported 'gpt4'" in err and "did you mean gpt-4" in err


def test_a_model_typo_is_an_error_with_the_nearest_names(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        capsys, "judge", "--db", str(db), "--models", "7b-guanaco-vicuna-generations", "answer-gpt35", "--dry-run"
    )
    assert code == 2 and "unknown model '7b-guanaco-vicuna-generations' (did you mean" in err
    assert GUANACO_7B in err


def test_rank_typos_suggest_the_nearest(db: Path, paper: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run_cli(capsys, "import", str(paper / "relative-gpt-3.5"), "--format", "qlora-relative", "--db", str(db))[0]
        == 0
    )
    code, _, err = run_cli(capsys, "rank", "--db", str(db), "--method", "relative", "--reference", "answer-gpt3")
    assert code == 2 and "did you mean 'answer-gpt35' for 'answer-gpt3'?" in err
    code, _, err = run_cli(
        capsys, "rank", "--db", str(db), "--method", "relative", "--reference", "answer-gpt35", "--models", "7b-guanaco"
    )
    assert code == 2 and f"did you mean '{GUANACO_7B}' for '7b-guanaco'?" in err

"""MMLU report sections: every subject and supercategory, formatting, escaping, and ``mmlu --html`` end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from qlora_eval.bench.mmlu import SUPERCATEGORIES
from qlora_eval.errors import InputError
from qlora_eval.report import RunMetadata, build_benchmark_report
from qlora_eval.report.htmlkit import esc
from qlora_eval.report.mmlu import SUPERCATEGORY_ORDER, MmluRun, column_labels, mmlu_sections

HOSTILE = "<script>alert(1)</script>"


def document(model: str, mode: str = "qlora", shots: int = 0, shift: float = 0.0) -> dict[str, Any]:
    """A result over every subject: subject k has 3 + k % 4 questions and accuracy (k % 7) / 7 + shift."""
    subjects = {
        s: {"accuracy": min(1.0, (k % 7) / 7 + shift), "n": 3 + k % 4} for k, s in enumerate(sorted(SUPERCATEGORIES))
    }
    supers: dict[str, dict[str, float]] = {}
    for s, v in subjects.items():
        group = supers.setdefault(SUPERCATEGORIES[s], {"hits": 0.0, "n": 0})
        group["hits"] += v["accuracy"] * v["n"]
        group["n"] += v["n"]
    n = sum(int(v["n"]) for v in subjects.values())
    return {
        "model": model,
        "accuracy": sum(g["hits"] for g in supers.values()) / n,
        "macro_accuracy": sum(v["accuracy"] for v in subjects.values()) / len(subjects),
        "n": n,
        "subjects": subjects,
        "supercategories": {k: {"accuracy": g["hits"] / g["n"], "n": int(g["n"])} for k, g in supers.items()},
        "mode": mode,
        "shots": shots,
        "source": "mmlu_zero_shot_val.jsonl",
    }


def page(*docs: dict[str, Any]) -> str:
    runs = [MmluRun.from_document(d, source=f"doc{i}") for i, d in enumerate(docs)]
    return build_benchmark_report("MMLU", mmlu_sections(runs), RunMetadata(created_at="2024-05-01T12:00:00+00:00"))


def section(html: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.S)
    assert match is not None, anchor
    return match.group(1)


def test_every_subject_and_supercategory_with_formatted_numbers() -> None:
    a, b = document("guanaco-7b"), document(HOSTILE, shift=0.1)
    html = page(a, b)
    assert re.findall(r"<h2>(.*?)</h2>", html) == ["MMLU", "MMLU by supercategory", "MMLU by subject", "Run metadata"]
    subjects = section(html, "s-mmlu-subjects")
    for subject in SUPERCATEGORIES:
        assert f"<td>{subject.replace('_', ' ')}</td>" in subjects
    supers = section(html, "s-mmlu-supercategories")
    for name in SUPERCATEGORY_ORDER:
        expected = 100 * a["supercategories"][name]["accuracy"]
        n = a["supercategories"][name]["n"]
        # name, shared n, then one accuracy per model, as percentages with one decimal.
        assert f'<td>{esc(name)}</td><td class="num">{n:,}</td><td class="num">{expected:.1f}%</td>' in supers
    assert f"{100 * b['accuracy']:.1f}%" in supers and f"{100 * a['macro_accuracy']:.1f}%" in supers
    assert 'src="data:image/svg+xml;base64,' in supers  # the bar plot is embedded
    summary = section(html, "s-mmlu-summary")
    assert "<strong>qlora</strong> mode" in summary and "<strong>0-shot</strong>" in summary
    assert "not comparable" not in summary
    # Headline in qlora mode is the macro average.
    assert f'<td class="num">{100 * a["macro_accuracy"]:.1f}%</td><td>mmlu_zero_shot_val.jsonl</td>' in summary
    assert "0.428" not in html and not re.search(r">\d\.\d{3,}<", html)  # no raw fractions anywhere in tables


def test_model_names_are_escaped() -> None:
    html = page(document(HOSTILE), document("a&b"))
    assert HOSTILE not in html
    assert esc(HOSTILE) in html and "a&amp;b" in html


def test_mixed_settings_are_flagged_and_labelled() -> None:
    qlora, harness = document("m"), document("m", mode="harness", shots=5)
    runs = [MmluRun.from_document(d, source="x") for d in (qlora, harness)]
    assert column_labels(runs) == ["m (qlora, 0-shot)", "m (harness, 5-shot)"]
    assert runs[1].headline == harness["accuracy"] and runs[0].headline == qlora["macro_accuracy"]
    html = page(qlora, harness)
    assert "not comparable" in section(html, "s-mmlu-summary")
    assert column_labels([runs[0], runs[0]]) == ["m (qlora, 0-shot) #1", "m (qlora, 0-shot) #2"]


def test_runs_on_different_questions_get_n_per_model() -> None:
    a, b = document("a"), document("b")
    b["subjects"] = {"astronomy": {"accuracy": 0.5, "n": 2}}
    b["supercategories"] = {"STEM": {"accuracy": 0.5, "n": 2}}
    b["n"] = 2
    subjects = section(page(a, b), "s-mmlu-subjects")
    assert "n · a" in subjects and "n · b" in subjects
    virology = re.search(r"<tr><td>virology</td>.*?</tr>", subjects)
    assert virology is not None and virology.group(0).count("–") == 2  # b has neither accuracy nor n for it


def test_bad_documents_name_the_source_and_field() -> None:
    bad = document("m")
    del bad["macro_accuracy"]
    with pytest.raises(InputError, match=r"r\.json: field 'macro_accuracy' is missing"):
        MmluRun.from_document(bad, source="r.json")
    with pytest.raises(InputError, match="unknown MMLU subjects: cooking"):
        MmluRun.from_document({**document("m"), "subjects": {"cooking": {"accuracy": 1, "n": 1}}}, source="r.json")
    with pytest.raises(ValueError, match="at least one"):
        mmlu_sections([])


def _write_questions(path: Path) -> Path:
    from qlora_eval.bench.mmlu import MmluItem, qlora_prompt

    rows = []
    subjects = ["virology", "astronomy", "philosophy", "econometrics", "astronomy", "virology"]
    for k, subject in enumerate(subjects):
        item = MmluItem(subject=subject, question=f"Question {k}?", choices=("w", "x", "y", "z"), answer=k % 4)
        rows.append({"subject": subject, "input": qlora_prompt(item, []), "output": "ABCD"[k % 4]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_mmlu_command_writes_html_and_combines(tiny_llama_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from qlora_eval.cli.main import main

    data = _write_questions(tmp_path / "six.jsonl")
    out, html_path = tmp_path / "r.json", tmp_path / "r.html"
    argv = ["mmlu", "--model", str(tiny_llama_dir), "--data", str(data), "--device", "cpu", "--batch-size", "6"]
    assert main([*argv, "--json", str(out), "--html", str(html_path)]) == 0
    html = html_path.read_text()
    result = json.loads(out.read_text())
    supers = section(html, "s-mmlu-supercategories")
    for name, score in result["supercategories"].items():
        assert f'<td>{esc(name)}</td><td class="num">{score["n"]}</td><td class="num">' in supers
    assert f"{100 * result['macro_accuracy']:.1f}%" in section(html, "s-mmlu-summary")
    for subject in ("virology", "astronomy", "philosophy", "econometrics"):
        assert f"<td>{subject}</td>" in section(html, "s-mmlu-subjects")
    assert str(data) in section(html, "s-run-metadata")  # the questions file, with its sha256

    combined = tmp_path / "both.html"
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**result, "model": HOSTILE, "mode": "harness"}))
    assert main(["mmlu", "--report-from", str(out), str(other), "--html", str(combined)]) == 0
    both = combined.read_text()
    assert esc(HOSTILE) in both and HOSTILE not in both and "not comparable" in both
    assert main(["mmlu", "--report-from", str(out)]) == 2  # no --html
    assert main(["mmlu", "--report-from", str(out), "--html", str(combined), "--model", "x"]) == 2
    assert main(["mmlu", "--html", str(combined)]) == 2  # neither a model nor results


def test_latest_runs_keeps_the_newest_per_model_and_setting() -> None:
    from qlora_eval.report.mmlu import latest_runs

    old, new = document("bravo"), document("bravo", shift=0.2)
    rows = [("bravo", old), ("alpha", document("alpha")), ("bravo", new), ("zulu", document("zulu"))]
    rows.append(("alpha", {**document("alpha", mode="harness", shots=5)}))
    runs = latest_runs(rows, ["alpha", "bravo"])  # ranking order; zulu is not ranked
    assert [(r.model, r.mode) for r in runs] == [("alpha", "harness"), ("alpha", "qlora"), ("bravo", "qlora")]
    assert runs[2].accuracy == new["accuracy"]


def test_rank_report_includes_stored_mmlu_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qlora_eval.store import Store
    from tests.cli.helpers import run_cli, write_tournament

    db = str(tmp_path / "s.db")
    assert run_cli(capsys, "import", str(write_tournament(tmp_path / "r", prompts=5)), "--format", "qlora",
                   "--db", db)[0] == 0  # fmt: skip
    html = tmp_path / "rank.html"
    assert run_cli(capsys, "rank", "--db", db, "--rounds", "20", "--html", str(html))[0] == 0
    assert "MMLU" not in html.read_text()  # nothing stored: no empty section
    with Store(db) as store:
        store.add_result("mmlu", "bravo", document("bravo"))
        store.add_result("mmlu", "not-ranked", document("not-ranked"))
    assert run_cli(capsys, "rank", "--db", db, "--rounds", "20", "--html", str(html))[0] == 0
    text = html.read_text()
    titles = re.findall(r"<h2>(.*?)</h2>", text)
    assert titles[-4:] == ["MMLU", "MMLU by supercategory", "MMLU by subject", "Run metadata"]
    assert "bravo" in section(text, "s-mmlu-summary") and "not-ranked" not in text

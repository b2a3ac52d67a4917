"""``qlora-eval mmlu`` and ``qlora-eval bench`` end to end (tiny model; one slow run on SmolLM2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlora_eval.bench.mmlu import MmluItem, qlora_prompt
from qlora_eval.cli.main import main

pytest.importorskip("torch")


def _write_qlora_file(path: Path) -> Path:
    rows = []
    for k, subject in enumerate(["virology", "virology", "astronomy", "philosophy"]):
        item = MmluItem(subject=subject, question=f"Question {k}?", choices=("w", "x", "y", "z"), answer=k % 4)
        rows.append({"subject": subject, "input": qlora_prompt(item, []), "output": "ABCD"[k % 4]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("mode", ["qlora", "harness"])
def test_mmlu_command_writes_json_and_stores(
    tiny_llama_dir: Path, tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write_qlora_file(tmp_path / "mmlu.jsonl")
    out = tmp_path / "out" / "mmlu.json"
    db = tmp_path / "store.db"
    argv = ["mmlu", "--model", str(tiny_llama_dir), "--data", str(data), "--mode", mode, "--device", "cpu"]
    assert main([*argv, "--batch-size", "3", "--json", str(out), "--db", str(db)]) == 0
    printed = capsys.readouterr().out
    assert f"mode: {mode}" in printed
    result = json.loads(out.read_text())
    assert result["n"] == 4 and result["mode"] == mode and result["shots"] == 0
    assert 0.0 <= result["accuracy"] <= 1.0 and 0.0 <= result["macro_accuracy"] <= 1.0
    assert {s: v["n"] for s, v in result["subjects"].items()} == {"virology": 2, "astronomy": 1, "philosophy": 1}
    assert set(result["supercategories"]) == {"other (business, health, misc.)", "STEM", "humanities"}
    assert result["primary"] == ("macro_accuracy" if mode == "qlora" else "accuracy")

    from qlora_eval.store import Store

    with Store(db) as store:
        stored = store.results("mmlu")
    assert len(stored) == 1 and stored[0][2]["n"] == 4


def test_mmlu_harness_five_shot_needs_dev(tiny_llama_dir: Path, tmp_path: Path) -> None:
    data = _write_qlora_file(tmp_path / "mmlu.jsonl")
    argv = ["mmlu", "--model", str(tiny_llama_dir), "--data", str(data), "--mode", "harness", "--shots", "5"]
    assert main(argv) == 2


def test_bench_quant_command(tiny_llama_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    out = tmp_path / "quant.json"
    argv = ["bench", "quant", "--model", str(tiny_llama_dir), "--reference-rows", "64", "--json", str(out)]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert set(result["types"]) == {"nf4", "nf4+dq", "fp4", "fp4+dq", "int8", "int8-blockwise"}
    assert result["types"]["nf4"]["bits_per_param"] == 4.5
    ref = result["normal_reference"]["types"]
    assert ref["nf4"]["bits_per_param"] - ref["nf4+dq"]["bits_per_param"] == pytest.approx(0.373, abs=1e-3)
    assert ref["nf4"]["rel_error"] < ref["fp4"]["rel_error"]
    assert main(["bench", "quant", "--model", f"{tiny_llama_dir}?bits=4"]) == 2  # already quantized: refused


def test_bench_memory_without_gpu_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the no-GPU message")
    assert main(["bench", "memory", "--shape", "llama-65b", "--seq-len", "2048"]) == 2
    err = capsys.readouterr().err
    assert "needs a CUDA GPU" in err and "--shape tiny --device cpu" in err


@pytest.mark.slow
def test_mmlu_smollm2_limit_40(smollm2_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "mmlu.json"
    argv = ["mmlu", "--model", "smollm2-135m", "--data", str(shared_data / "mmlu_zero_shot_val.jsonl")]
    assert main([*argv, "--limit", "40", "--device", "cpu", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["n"] == 40 and result["mode"] == "qlora"
    assert 0.0 <= result["accuracy"] <= 1.0
    assert sum(v["n"] for v in result["subjects"].values()) == 40
    assert set(result["subjects"]) <= {"abstract_algebra", "anatomy", "astronomy"}


def _greedy_letters(model_dir: Path, data: Path) -> list[int]:
    """The tiny model's choice per question, computed here one prompt at a time (no batching, no padding):
    the letter whose first token has the highest next-token logit after the whole prompt (QLoRA's abcd_idx)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    letters = [tokenizer(letter, add_special_tokens=False)["input_ids"][0] for letter in "ABCD"]
    choices = []
    for line in data.read_text().splitlines():
        ids = tokenizer(json.loads(line)["input"], return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = model(ids).logits[0, -1]
        choices.append(int(torch.argmax(logits[letters])))
    return choices


def test_mmlu_accuracy_is_the_planted_value(
    tiny_llama_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14: ``0 <= acc <= 1`` passed any scorer. Gold letters are planted from the model's own choices:
    right on the first three questions, wrong on the fourth, so accuracy must be exactly 3/4."""
    data = _write_qlora_file(tmp_path / "mmlu.jsonl")
    choice = _greedy_letters(tiny_llama_dir, data)
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    for k, row in enumerate(rows):
        row["output"] = "ABCD"[choice[k] if k < 3 else (choice[k] + 1) % 4]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "mmlu.json"
    argv = ["mmlu", "--model", str(tiny_llama_dir), "--data", str(data), "--mode", "qlora", "--device", "cpu"]
    assert main([*argv, "--batch-size", "3", "--json", str(out)]) == 0  # batches of 3 and 1: padding is exercised
    result = json.loads(out.read_text())
    assert result["accuracy"] == pytest.approx(0.75)
    subjects = {s: v["accuracy"] for s, v in result["subjects"].items()}
    assert subjects == {"virology": 1.0, "astronomy": 1.0, "philosophy": 0.0}
    assert result["macro_accuracy"] == pytest.approx(2 / 3)

"""SmolLM2-135M through bitsandbytes NF4 on the CPU: the CLI run of the issue, made small for CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_cli_trains_smollm2_in_4bit(shared_data: Path, smollm2_dir: Path, tmp_path: Path) -> None:
    from qlora_eval.cli.main import main

    out = tmp_path / "adapter"
    code = main(
        [
            "train", "--base-model", "smollm2-135m",
            "--dataset", str(shared_data / "oa_questions.jsonl"), "--dataset-format", "input-output",
            "--max-steps", "8", "--max-seq-len", "128", "--per-device-batch-size", "2", "--grad-accum", "1",
            "--lora-r", "16", "--learning-rate", "1e-3", "--compute-dtype", "float32",
            "--output", str(out), "--json", str(tmp_path / "summary.json"), "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    losses = summary["losses"]
    assert summary["steps"] == 8 and len(losses) == 8
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # the loss falls
    card = json.loads((out / "training.json").read_text())
    classes = card["results"]["layer_classes"]
    assert classes == {"bitsandbytes.nn.modules.Linear4bit": 30 * 7}  # 30 layers x 7 projections, all 4-bit
    assert card["settings"]["bits"] == 4 and card["settings"]["warmup_steps"] == 1
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "loss.png"):
        assert (out / name).is_file(), name

"""SmolLM2-135M through bitsandbytes NF4 on the CPU: the CLI run of the issue, made small for CI.

bitsandbytes dequantizes every 4-bit layer in each forward, recompute and backward pass on the CPU, a
cost per pass rather than per token, so CI trains few passes: 8 real OA rows, 2 batches of 4 that
repeat every epoch (group-by-length puts the same rows together), 4 steps. The loss on each batch
must fall between its first and its last visit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_cli_trains_smollm2_in_4bit(shared_data: Path, smollm2_dir: Path, tmp_path: Path) -> None:
    from qlora_eval.cli.main import main

    data = tmp_path / "oa8.jsonl"
    data.write_text("".join((shared_data / "oa_questions.jsonl").read_text().splitlines(keepends=True)[:8]))
    out = tmp_path / "adapter"
    code = main(
        [
            "train", "--base-model", "smollm2-135m", "--dataset", str(data), "--dataset-format", "input-output",
            "--max-steps", "4", "--max-seq-len", "64", "--per-device-batch-size", "4", "--grad-accum", "1",
            "--lora-r", "16", "--learning-rate", "2e-3", "--warmup-ratio", "0", "--compute-dtype", "float32",
            "--no-gradient-checkpointing", "--save-every", "4",
            "--output", str(out), "--json", str(tmp_path / "summary.json"), "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    losses = summary["losses"]
    assert summary["steps"] == 4 and len(losses) == 4
    assert losses[2] < losses[0] and losses[3] < losses[1]  # same batch, later visit: lower loss
    card = json.loads((out / "training.json").read_text())
    assert card["results"]["layer_classes"] == {"bitsandbytes.nn.modules.Linear4bit": 30 * 7}  # all 4-bit
    assert card["settings"]["bits"] == 4 and card["settings"]["double_quant"] is True
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "loss.png"):
        assert (out / name).is_file(), name

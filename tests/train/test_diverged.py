"""A non-finite training loss stops the run with TrainingDivergedError (not a config error: the config is valid)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qlora_eval.errors import ConfigError, TrainingDivergedError
from qlora_eval.train.config import DatasetFormat, make_config


def test_nan_loss_raises_training_diverged(
    tiny_llama_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qlora_eval.train import loop

    data = tmp_path / "data.jsonl"
    rows = [{"input": f"### Human: Add {i} and 1. ### Assistant:", "output": f" {i + 1}."} for i in range(8)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = make_config(
        base_model=str(tiny_llama_dir),
        dataset=str(data),
        dataset_format=DatasetFormat.INPUT_OUTPUT,
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_batch_size=2,
        grad_accum=1,
        lora_r=4,
        compute_dtype="float32",
        max_seq_len=32,
    )
    real_step = loop.optimizer_step

    def diverging_step(*args: Any) -> tuple[Any, float]:
        totals, grad_norm = real_step(*args)
        return totals * float("nan"), grad_norm  # what a blown-up step reports

    monkeypatch.setattr(loop, "optimizer_step", diverging_step)
    with pytest.raises(TrainingDivergedError, match=r"loss became nan at step 1.*--learning-rate") as caught:
        loop.train(config, progress=False)
    assert not isinstance(caught.value, ConfigError)

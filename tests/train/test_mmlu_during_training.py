"""MMLU during training (--mmlu-every): figures land in the step records, training.json and the plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qlora_eval.errors import ConfigError
from tests.train.test_train_tiny import _config, _data

pytest.importorskip("torch")


def _mmlu_file(path: Path) -> Path:
    rows = []
    for i, subject in enumerate(["anatomy", "astronomy", "virology", "marketing"] * 2):
        question = f"Question {i}: which letter?\nA. one\nB. two\nC. three\nD. four\nAnswer:"
        header = f"The following are multiple choice questions (with answers) about  {subject}.\n\n"
        rows.append({"subject": subject, "input": header + question, "output": "ABCD"[i % 4]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_mmlu_every_scores_the_adapter_in_eval_mode_and_records_it(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from qlora_eval.cli.train_cmd import mmlu_evaluator
    from qlora_eval.train.card import PLOT_FILE, write_card, write_loss_plot
    from qlora_eval.train.loop import train

    config = _config(tiny_llama_dir, _data(tmp_path / "d.jsonl"), tmp_path / "out", mmlu_every=3, mmlu_limit=4)
    scorer = mmlu_evaluator(_mmlu_file(tmp_path / "mmlu.jsonl"), config.mmlu_limit)
    modes: list[bool] = []

    repacked: list[int] = []

    def evaluator(model: Any, tokenizer: Any) -> dict[str, float]:
        modes.append(model.training)
        figures = scorer(model, tokenizer)  # the bench's real scorer on the tiny model
        # bitsandbytes' CPU inference packing has no autograd: training after this would lose gradients
        states = [getattr(getattr(m, "weight", None), "quant_state", None) for m in model.modules()]
        repacked.extend(1 for q in states if getattr(q, "packing_format_for_cpu", False))
        return figures

    result = train(config, progress=False, evaluator=evaluator)
    assert repacked == []
    assert modes == [False, False]  # step 3 and the last step (4), each in eval mode
    assert [e["step"] for e in result.evaluations] == [3, 4]
    for entry in result.evaluations:
        assert entry["mmlu_n"] == 4
        assert 0.0 <= entry["mmlu_accuracy"] <= 1.0
    assert "mmlu_accuracy" not in result.history[0]
    card_path = write_card(config, result)
    saved = json.loads(card_path.read_text(encoding="utf-8"))
    assert [e["step"] for e in saved["results"]["evaluations"]] == [3, 4]
    assert write_loss_plot(result, tmp_path / "out" / PLOT_FILE, "t").stat().st_size > 0


def test_mmlu_every_without_an_evaluator_fails_before_training(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from qlora_eval.train.loop import train

    config = _config(tiny_llama_dir, _data(tmp_path / "d.jsonl"), tmp_path / "out", mmlu_every=2)
    with pytest.raises(ConfigError, match="--mmlu-every"):
        train(config, progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_mmlu_needs_a_data_file() -> None:
    from qlora_eval.cli.train_cmd import mmlu_evaluator

    with pytest.raises(ConfigError, match="--mmlu-data"):
        mmlu_evaluator(None, 10)

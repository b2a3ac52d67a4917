"""The CPU thread choice: no more threads than idle cores, at least one, explicit counts as given."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlora_eval.errors import ConfigError
from qlora_eval.models.threads import ThreadChoice, choose_cpu_threads, current_choice
from qlora_eval.train.config import DatasetFormat, make_config


def test_idle_machine_keeps_torch_default() -> None:
    choice = choose_cpu_threads(None, torch_default=2, cores=2, load_average=0.2)
    assert choice.threads == 2
    assert "load average 0.20" in choice.reason


def test_busy_machine_uses_only_idle_cores() -> None:
    assert choose_cpu_threads(None, torch_default=2, cores=2, load_average=1.2).threads == 1
    assert choose_cpu_threads(None, torch_default=8, cores=8, load_average=3.0).threads == 5


def test_overloaded_machine_still_gets_one_thread() -> None:
    assert choose_cpu_threads(None, torch_default=2, cores=2, load_average=5.4).threads == 1


def test_never_more_than_torch_default() -> None:
    # OMP_NUM_THREADS=1 (torch default 1) is honoured on an idle 8-core machine
    assert choose_cpu_threads(None, torch_default=1, cores=8, load_average=0.0).threads == 1


def test_explicit_count_is_used_as_given() -> None:
    choice = choose_cpu_threads(3, torch_default=2, cores=2, load_average=5.0)
    assert choice.threads == 3
    assert "cpu_threads=3" in choice.reason


def test_current_choice_is_within_bounds() -> None:
    import torch

    choice = current_choice(None)
    assert 1 <= choice.threads <= torch.get_num_threads()


def test_config_rejects_zero_threads() -> None:
    with pytest.raises(ConfigError, match="cpu_threads"):
        make_config(
            base_model="x", dataset="f.jsonl", dataset_format=DatasetFormat.INPUT_OUTPUT, output_dir="o", cpu_threads=0
        )


def test_a_model_loaded_on_cpu_uses_and_records_the_choice(tiny_llama_dir: Path) -> None:
    import torch

    from qlora_eval.models.hf import HFChatModel
    from qlora_eval.models.spec import parse_model_spec

    before = torch.get_num_threads()
    try:
        model = HFChatModel.from_spec(parse_model_spec(f"hf:{tiny_llama_dir}"), device="cpu")
        choice = model.cpu_threads
        assert choice is not None and 1 <= choice.threads <= before
        assert torch.get_num_threads() == choice.threads
        assert "load average" in choice.reason
        assert choice.to_dict() == {"threads": choice.threads, "reason": choice.reason}
    finally:
        torch.set_num_threads(before)


def test_judge_summary_records_a_local_judges_choice() -> None:
    from qlora_eval.judge.runner import JudgeRunSummary

    base = JudgeRunSummary(1, 0, 1, 0, 0, 0, 1, 0, 0.0, False)
    assert "cpu_threads" not in base.to_dict()
    with_choice = JudgeRunSummary(1, 0, 1, 0, 0, 0, 1, 0, 0.0, False, ThreadChoice(1, "why"))
    assert with_choice.to_dict()["cpu_threads"] == {"threads": 1, "reason": "why"}

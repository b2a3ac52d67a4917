"""The CPU thread choice: no more threads than idle cores, at least one, explicit counts as given."""

from __future__ import annotations

import pytest

from qlora_eval.errors import ConfigError
from qlora_eval.train.config import DatasetFormat, make_config
from qlora_eval.train.threads import choose_cpu_threads, current_choice


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

"""The 4-bit base, the target-module scan and the honoured --target-modules override (tiny Llama, CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qlora_eval.errors import ConfigError
from qlora_eval.train.config import DatasetFormat, TrainConfig, make_config
from qlora_eval.train.model import add_lora, linear_module_names, load_base

ALL_LINEAR = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


def _config(tiny: Path, **overrides: Any) -> TrainConfig:
    return make_config(
        base_model=str(tiny),
        dataset="unused.jsonl",
        dataset_format=DatasetFormat.INPUT_OUTPUT,
        output_dir="unused",
        compute_dtype="float32",
        lora_r=4,
        **overrides,
    )


def test_base_is_nf4_linear4bit_and_head_is_not_adapted(tiny_llama_dir: Path) -> None:
    import bitsandbytes as bnb

    config = _config(tiny_llama_dir)
    model = load_base(str(tiny_llama_dir), config, "cpu")
    q = model.model.layers[0].self_attn.q_proj
    assert isinstance(q, bnb.nn.Linear4bit)
    assert q.weight.quant_type == "nf4"
    assert q.weight.quant_state.nested  # double quantization
    assert linear_module_names(model) == ALL_LINEAR  # lm_head excluded
    peft_model, targets = add_lora(model, config)
    assert targets == ALL_LINEAR
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in peft_model.named_parameters() if "lora_A" in n}
    assert adapted == set(ALL_LINEAR)
    assert not any("lm_head" in n and p.requires_grad for n, p in peft_model.named_parameters())
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


def test_target_modules_override_is_used(tiny_llama_dir: Path) -> None:
    config = _config(tiny_llama_dir, target_modules=("q_proj", "v_proj"))
    peft_model, targets = add_lora(load_base(str(tiny_llama_dir), config, "cpu"), config)
    assert targets == ["q_proj", "v_proj"]
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in peft_model.named_parameters() if "lora_A" in n}
    assert adapted == {"q_proj", "v_proj"}
    assert peft_model.peft_config["default"].target_modules == {"q_proj", "v_proj"}


def test_unknown_target_module_is_an_error(tiny_llama_dir: Path) -> None:
    config = _config(tiny_llama_dir, target_modules=("q_proj", "query_key_value"))
    with pytest.raises(ConfigError, match=r"\['query_key_value'\] match no linear layer"):
        add_lora(load_base(str(tiny_llama_dir), config, "cpu"), config)


def test_warmup_really_warms_up() -> None:
    import torch

    from qlora_eval.train.loop import build_scheduler

    config = make_config(
        base_model="m", dataset="d", dataset_format=DatasetFormat.INPUT_OUTPUT, output_dir="o", max_steps=100
    )
    assert config.warmup_steps == 3
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=config.learning_rate)
    scheduler = build_scheduler(config, optimizer)
    lrs = []
    for _ in range(6):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs[0] < lrs[1] < lrs[2] < lrs[3]
    assert lrs[3:] == [pytest.approx(2e-4)] * 3

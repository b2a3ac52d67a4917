"""Training settings: presets, overrides, checks, warmup length, resume compatibility."""

from __future__ import annotations

import pytest

from qlora_eval.errors import ConfigError
from qlora_eval.train.config import (
    PRESETS,
    DatasetFormat,
    TrainConfig,
    differences_for_resume,
    make_config,
)


def _make(**overrides: object) -> TrainConfig:
    return make_config(
        base_model="smollm2-135m",
        dataset="data.jsonl",
        dataset_format=DatasetFormat.INPUT_OUTPUT,
        output_dir="out",
        **overrides,  # type: ignore[arg-type]
    )


def test_default_is_the_guanaco_7b_recipe() -> None:
    config = _make()
    assert (config.lora_r, config.lora_alpha, config.lora_dropout) == (64, 16, 0.1)
    assert config.learning_rate == 2e-4
    assert config.max_grad_norm == 0.3
    assert config.optimizer == "paged_adamw_32bit"
    assert config.max_steps == 1875
    assert config.target_max_len == 512
    assert config.effective_batch(world_size=1) == 16
    assert (config.bits, config.double_quant, config.compute_dtype) == (4, True, "bfloat16")
    assert config.target_modules is None  # every linear layer but the head
    assert config.warmup_steps == 57  # ceil(0.03 * 1875)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_has_effective_batch_16(preset: str) -> None:
    assert _make(preset=preset).effective_batch(world_size=1) == 16


def test_large_presets_use_lower_learning_rate_and_dropout() -> None:
    for preset in ("guanaco-33b", "guanaco-65b"):
        config = _make(preset=preset)
        assert (config.learning_rate, config.lora_dropout) == (1e-4, 0.05)


def test_overrides_win_and_none_means_preset() -> None:
    config = _make(preset="guanaco-33b", learning_rate=3e-4, lora_dropout=None, target_modules=("q_proj",))
    assert config.learning_rate == 3e-4
    assert config.lora_dropout == 0.05
    assert config.target_modules == ("q_proj",)


def test_source_length_follows_the_format() -> None:
    assert _make().source_max_len == 1024
    guanaco = make_config(base_model="m", dataset="oasst1", dataset_format=DatasetFormat.GUANACO, output_dir="o")
    assert guanaco.source_max_len == 16


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_steps", 0),
        ("learning_rate", 0.0),
        ("warmup_ratio", 1.5),
        ("bits", 8),
        ("target_max_len", 1),
        ("max_seq_len", 4),
        ("max_tokens_per_batch", 0),
        ("loss_chunk_tokens", 0),
        ("loss", "fused"),
        ("attention", "flash"),
        ("mmlu_every", 0),
    ],
)
def test_bad_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field.replace("_", "-")):
        _make(**{field: value})


def test_unknown_setting_and_preset() -> None:
    with pytest.raises(ConfigError, match="unknown training setting"):
        _make(lora_rank=3)
    with pytest.raises(ConfigError, match="preset"):
        _make(preset="guanaco-1b")


def test_dict_round_trip() -> None:
    config = _make(target_modules=("q_proj", "v_proj"), max_seq_len=256)
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_resume_differences_name_the_setting() -> None:
    a = _make()
    assert differences_for_resume(a, _make(save_every=3)) == []
    diffs = differences_for_resume(a, _make(learning_rate=1e-4))
    assert len(diffs) == 1 and diffs[0].startswith("learning_rate")


def test_speed_settings_may_change_on_resume_but_the_order_may_not() -> None:
    saved = _make()
    assert differences_for_resume(saved, _make(max_tokens_per_batch=4096, loss="plain", attention="sdpa")) == []
    assert differences_for_resume(saved, _make(shuffle=False)) != []
    assert differences_for_resume(saved, _make(packing=False)) != []  # the order's length grouping follows it

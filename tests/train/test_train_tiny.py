"""End-to-end training on the tiny Llama, 4-bit NF4 through bitsandbytes on the CPU.

Covers: resume equals uninterrupted training, the adapter round trip through peft, the card and plot,
the ``--json`` summary, warmup in a real run, and merging into a dequantized 16-bit model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from qlora_eval.train.checkpoint import step_dir
from qlora_eval.train.config import DatasetFormat, TrainConfig, make_config

PROBE = [[1, 40, 41, 42, 43, 44, 45, 46]]


def _data(path: Path) -> Path:
    rows = []
    for i in range(24):
        rows.append(
            {"input": f"### Human: Add {i} and {i + 1}. ### Assistant:", "output": f" {2 * i + 1}." * (1 + i % 4)}
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _config(tiny: Path, data: Path, out: Path, **overrides: Any) -> TrainConfig:
    values: dict[str, Any] = {
        "max_steps": 4,
        "per_device_batch_size": 2,
        "grad_accum": 2,
        "learning_rate": 5e-3,
        "warmup_ratio": 0.3,
        "lora_r": 8,
        "compute_dtype": "float32",
        "max_seq_len": 48,
        "save_every": 2,
    }
    values.update(overrides)
    return make_config(
        base_model=str(tiny),
        dataset=str(data),
        dataset_format=DatasetFormat.INPUT_OUTPUT,
        output_dir=str(out),
        **values,
    )


def _logits(model: Any) -> Any:
    import torch

    model.eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor(PROBE)).logits.float().clone()


@pytest.fixture(scope="module")
def trained(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import torch

    from qlora_eval.train.loop import train

    root = tmp_path_factory.mktemp("train")
    data = _data(root / "data.jsonl")
    config = _config(tiny_llama_dir, data, root / "run")
    captured: dict[str, Any] = {}
    threads_before = torch.get_num_threads()
    result = train(config, progress=False, on_end=lambda m: captured.update(logits=_logits(m)))
    captured["threads_restored"] = torch.get_num_threads() == threads_before
    return {"config": config, "result": result, "data": data, "root": root, **captured}


def test_run_writes_adapter_tokenizer_checkpoints(trained: dict[str, Any]) -> None:
    out = Path(trained["config"].output_dir)
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).is_file(), name
    for step in (2, 4):
        ckpt = step_dir(str(out), step)
        for name in ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng-rank0.pt", "state.json"):
            assert (ckpt / name).is_file(), (step, name)
    result = trained["result"]
    assert trained["threads_restored"]  # the run's CPU thread choice does not leak to the caller
    assert result.steps == 4 and len(result.losses) == 4
    assert result.layer_classes == {"bitsandbytes.nn.modules.Linear4bit": 14}
    assert result.tokens_per_second > 0 and result.peak_memory_bytes > 0


def test_warmup_in_a_real_run(trained: dict[str, Any]) -> None:
    lrs = [h["learning_rate"] for h in trained["result"].history]
    assert trained["config"].warmup_steps == 2
    assert lrs[0] < lrs[1] < lrs[2] == lrs[3] == pytest.approx(5e-3)


def test_resume_equals_uninterrupted(trained: dict[str, Any], tiny_llama_dir: Path) -> None:
    from safetensors.torch import load_file

    from qlora_eval.train.loop import train

    full = trained["result"]
    out = trained["root"] / "resumed"
    shutil.copytree(step_dir(trained["config"].output_dir, 2), step_dir(str(out), 2))
    config = _config(tiny_llama_dir, trained["data"], out)
    resumed = train(config, progress=False, resume=True)
    assert resumed.losses[:2] == full.losses[:2]  # the history comes from the checkpoint
    assert resumed.losses[2:] == pytest.approx(full.losses[2:], rel=1e-5, abs=1e-6)
    assert full.losses[2] != full.losses[3]  # the steps differ, so equality above is not vacuous
    a = load_file(str(Path(trained["config"].output_dir) / "adapter_model.safetensors"))
    b = load_file(str(out / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max().item() < 1e-5, key


def test_resume_refuses_changed_settings(trained: dict[str, Any], tiny_llama_dir: Path) -> None:
    from qlora_eval.errors import ConfigError
    from qlora_eval.train.loop import train

    out = trained["root"] / "changed"
    shutil.copytree(step_dir(trained["config"].output_dir, 2), step_dir(str(out), 2))
    with pytest.raises(ConfigError, match="learning_rate"):
        train(_config(tiny_llama_dir, trained["data"], out, learning_rate=1e-3), progress=False, resume=True)


def test_adapter_round_trip_through_peft(trained: dict[str, Any], tiny_llama_dir: Path) -> None:
    import torch
    from peft import PeftModel

    from qlora_eval.train.model import load_base

    # A fresh base for each: bitsandbytes repacks 4-bit weights for its CPU inference kernel on the first
    # eval-mode forward, which changes the numerics slightly, so the adapter goes onto an untouched base.
    loaded = PeftModel.from_pretrained(
        load_base(str(tiny_llama_dir), trained["config"], "cpu"), trained["config"].output_dir
    )
    logits = _logits(loaded)
    base_logits = _logits(load_base(str(tiny_llama_dir), trained["config"], "cpu"))
    assert torch.allclose(logits, trained["logits"], atol=1e-5)
    assert not torch.allclose(logits, base_logits, atol=1e-3)  # the adapter changes the model


def test_card_plot_and_json(trained: dict[str, Any]) -> None:
    from qlora_eval.train.card import PLOT_FILE, card, summary_json, write_card, write_loss_plot

    config, result = trained["config"], trained["result"]
    path = write_card(config, result)
    data = json.loads(path.read_text())
    assert data["settings"]["lora_r"] == 8 and data["settings"]["warmup_steps"] == 2
    assert data["data"]["sha256"] == result.data_sha256 and len(result.data_sha256) == 64
    assert data["versions"]["bitsandbytes"] and data["versions"]["torch"]
    assert [s["loss"] for s in data["steps"]] == result.losses
    assert data["results"]["peak_memory_bytes"] > 0 and data["results"]["tokens_per_second"] > 0
    assert card(config, result)["hardware"]["cpu_count"]
    # the CPU run's thread count is recorded with the reason it was chosen
    assert data["results"]["cpu_threads"] >= 1 and "cores" in data["results"]["cpu_threads_reason"]
    png = write_loss_plot(result, Path(config.output_dir) / PLOT_FILE, "t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(summary_json(result)) == {"losses", "steps", "tokens_per_second", "peak_memory_bytes"}


def test_merge_matches_the_adapter_on_the_quantized_base(trained: dict[str, Any], tiny_llama_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from qlora_eval.train.merge import merge_adapter

    out = merge_adapter(
        str(tiny_llama_dir), trained["config"].output_dir, str(trained["root"] / "merged"), dtype="float32"
    )
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(str(out))
    assert getattr(merged.config, "quantization_config", None) is None
    import bitsandbytes as bnb
    from peft import PeftModel

    from qlora_eval.train.model import load_base

    # Reference: the 4-bit base + adapter through bitsandbytes' dequantize-then-matmul path (the training
    # path). In eval mode without grad bitsandbytes switches to a repacked CPU kernel with other rounding,
    # so its 4-bit layers are kept in training mode (they hold no dropout).
    reference = PeftModel.from_pretrained(
        load_base(str(tiny_llama_dir), trained["config"], "cpu"), str(trained["config"].output_dir)
    )
    reference.eval()
    for module in reference.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.train()
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor(PROBE)).logits.float()
    assert torch.allclose(_logits(merged), expected, atol=1e-4)


def test_adapter_round_trip_through_the_generation_runner(trained: dict[str, Any], tiny_llama_dir: Path) -> None:
    import torch

    hf = pytest.importorskip("qlora_eval.models.hf")
    from qlora_eval.models.spec import parse_model_spec

    spec = parse_model_spec(f"hf:{tiny_llama_dir}?bits=4&dtype=float32&adapter={trained['config'].output_dir}")
    loaded = hf.load_hf_model(spec, device="cpu")
    from peft import PeftModel

    assert isinstance(loaded.model, PeftModel)
    assert torch.allclose(_logits(loaded.model), trained["logits"], atol=1e-5)

"""The layer-by-layer 4-bit builder and the memory benchmark on a tiny shape, on the CPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

bnb = pytest.importorskip("bitsandbytes")
torch = pytest.importorskip("torch")

from qlora_eval.bench import builder  # noqa: E402
from qlora_eval.bench.builder import build_random_model, decoder_layers  # noqa: E402
from qlora_eval.bench.shapes import shape_config  # noqa: E402
from qlora_eval.errors import ConfigError, DeviceError  # noqa: E402


def test_every_decoder_linear_is_nf4(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Linear in the decoder layers ends up Linear4bit, and at most one layer is ever bf16 at a time."""
    seen_layers: list[Any] = []
    bf16_layers_at_quantization: list[int] = []
    original_layers, original_quantize = builder.decoder_layers, builder.quantize_linears_

    def spy_layers(model: Any) -> Any:
        layers = original_layers(model)
        seen_layers.append(layers)
        return layers

    def spy_quantize(module: Any, device: Any, dtype: Any) -> int:
        def is_bf16_linear(m: Any) -> bool:
            return type(m) is torch.nn.Linear and not m.weight.is_meta

        bf16 = sum(any(is_bf16_linear(m) for m in layer.modules()) for layer in seen_layers[-1])
        bf16_layers_at_quantization.append(bf16)
        return original_quantize(module, device, dtype)

    monkeypatch.setattr(builder, "decoder_layers", spy_layers)
    monkeypatch.setattr(builder, "quantize_linears_", spy_quantize)
    _, config = shape_config("tiny")
    built = build_random_model(config, quantize=True, device="cpu", seed=1)

    assert bf16_layers_at_quantization == [1, 1]  # only the layer being quantized was ever 16-bit
    layers = decoder_layers(built.model)
    linears = [m for layer in layers for m in layer.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2 * 7
    for linear in linears:
        assert isinstance(linear, bnb.nn.Linear4bit)
        assert linear.weight.quant_state.quant_type == "nf4"
        assert linear.weight.quant_state.nested  # double quantization
        assert linear.weight.quant_state.blocksize == 64
        assert linear.compute_dtype == torch.bfloat16
    assert not isinstance(built.model.lm_head, bnb.nn.Linear4bit)
    assert built.model.lm_head.weight.dtype == torch.bfloat16
    assert not any(t.is_meta for t in [*built.model.parameters(), *built.model.buffers()])

    plain = build_random_model(config, quantize=False, device="cpu", seed=1)
    assert plain.n_params == built.n_params
    linear_params = sum(m.weight.numel() for layer in decoder_layers(plain.model) for m in layer.modules()
                        if isinstance(m, torch.nn.Linear))  # fmt: skip
    # bf16 -> NF4+DQ saves (16 - 4.127) bits on every decoder weight
    saved = (plain.weights_bytes - built.weights_bytes) * 8 / linear_params
    assert saved == pytest.approx(16 - 4.127, abs=0.05)

    tokens = torch.randint(0, config.vocab_size, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = built.model(input_ids=tokens).logits
    assert logits.shape == (2, 8, config.vocab_size) and torch.isfinite(logits).all()


def test_same_seed_same_weights() -> None:
    _, config = shape_config("tiny")
    a = build_random_model(config, quantize=False, device="cpu", seed=5).model
    b = build_random_model(config, quantize=False, device="cpu", seed=5).model
    c = build_random_model(config, quantize=False, device="cpu", seed=6).model
    wa, wb, wc = (m.model.layers[1].mlp.up_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


@pytest.mark.slow
def test_memory_benchmark_steps_on_cpu() -> None:
    from qlora_eval.bench.memory import Method, run_memory_benchmark

    result = run_memory_benchmark("tiny", seq_len=16, batch=2, method=Method.QLORA, device="cpu", warmup=1, steps=1)
    # LoRA r=64 on q,k,v,o (64->64), gate/up (64->128), down (128->64), 2 layers
    per_layer = 4 * 64 * (64 + 64) + 2 * 64 * (64 + 128) + 64 * (128 + 64)
    assert result.trainable_params == 2 * per_layer
    assert len(result.losses) == 2 and all(loss > 0 for loss in result.losses)
    assert result.peak_allocated_gib is None and result.device == "cpu"  # no CUDA counters on the CPU
    assert result.tokens_per_s > 0 and result.optimizer_state_gib > 0
    assert result.hardware["versions"]["bitsandbytes"] == bnb.__version__
    assert result.optimizer == "bitsandbytes AdamW32bit" and not result.paged
    json.dumps(result.to_dict())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_gpu_benchmarks_refuse_without_cuda() -> None:
    from qlora_eval.bench.memory import run_memory_benchmark
    from qlora_eval.bench.throughput import run_generate_benchmark, shape_loader

    with pytest.raises(DeviceError, match="needs a CUDA GPU"):
        run_memory_benchmark("llama-7b", seq_len=512, batch=1)
    with pytest.raises(DeviceError, match="--shape tiny --device cpu"):
        run_generate_benchmark("llama-7b", shape_loader("llama-7b", device="cuda"))


@pytest.mark.slow
def test_generate_benchmark_on_cpu() -> None:
    from qlora_eval.bench.throughput import run_generate_benchmark, shape_loader

    result = run_generate_benchmark(
        "tiny", shape_loader("tiny", device="cpu"), batches=(1, 2), prompt_len=8, new_tokens=2, device="cpu"
    )
    assert [(r.precision, r.batch) for r in result.rows] == [("bf16", 1), ("bf16", 2), ("nf4", 1), ("nf4", 2)]
    assert all(r.prefill_tokens_per_s > 0 and r.decode_tokens_per_s > 0 for r in result.rows)
    assert result.rows[2].weights_gib < result.rows[0].weights_gib


def test_shape_from_config_json(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
                                "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 100}))  # fmt: skip
    name, config = shape_config(str(path))
    assert name == "config" and config.hidden_size == 32
    built = build_random_model(config, quantize=True, device="cpu")
    assert isinstance(built.model.model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    path.write_text(json.dumps({"hidden_size": 32}))
    with pytest.raises(ConfigError, match="model_type") as info:
        shape_config(str(path))
    assert info.value.source == str(path)
    with pytest.raises(ConfigError, match="unknown shape"):
        shape_config("llama-8b")

"""Quantization figures against the closed forms, and NF4 vs FP4 on normal weights."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("bitsandbytes")
torch = pytest.importorskip("torch")

from qlora_eval.bench.quant import (  # noqa: E402
    BLOCKSIZE,
    NESTED_BLOCKSIZE,
    QuantType,
    closed_form_bits,
    linear_weights,
    measure,
    normal_reference,
    quantize_roundtrip,
)


@pytest.fixture(scope="module")
def normal() -> dict[str, tuple[float, float]]:
    report = normal_reference(256, 1024, seed=3)  # 262,144 weights: a whole number of 64*256 blocks
    return {name: (fig.bits_per_param, fig.rel_error) for name, fig in report.types.items()}


def test_closed_forms() -> None:
    assert closed_form_bits(QuantType.NF4) == 4.5
    assert closed_form_bits(QuantType.NF4_DQ) == pytest.approx(4 + 8 / 64 + 32 / (64 * 256))
    assert closed_form_bits(QuantType.NF4) - closed_form_bits(QuantType.NF4_DQ) == pytest.approx(0.373, abs=1e-3)
    assert closed_form_bits(QuantType.INT8, columns=1024) == 8 + 32 / 1024


def test_stored_bits_match_the_closed_forms(normal: dict[str, tuple[float, float]]) -> None:
    n = 256 * 1024
    for name in ("nf4", "fp4"):
        assert normal[name][0] == 4.5
    for name in ("nf4+dq", "fp4+dq"):
        # plus the one float32 offset bitsandbytes stores per double-quantized tensor
        assert normal[name][0] == pytest.approx(4 + 8 / BLOCKSIZE + 32 / (BLOCKSIZE * NESTED_BLOCKSIZE) + 32 / n)
    assert normal["nf4"][0] - normal["nf4+dq"][0] == pytest.approx(0.373, abs=1e-3)
    assert normal["int8"][0] == 8 + 32 / 1024
    assert normal["int8-blockwise"][0] == 8.5


def test_error_ordering_on_normal_weights(normal: dict[str, tuple[float, float]]) -> None:
    nf4, fp4 = normal["nf4"][1], normal["fp4"][1]
    assert nf4 < fp4  # NF4 is information-theoretically built for normal weights
    assert 0.05 < nf4 < 0.15
    assert normal["nf4+dq"][1] == pytest.approx(nf4, rel=0.02)  # double quantization costs almost nothing
    assert normal["int8"][1] < nf4 / 5


def test_roundtrip_restores_shape_and_rejects_vectors() -> None:
    weight = torch.randn(32, 128, generator=torch.Generator().manual_seed(0))
    restored, bits = quantize_roundtrip(weight, QuantType.NF4_DQ)
    assert restored.shape == weight.shape and bits > 0
    from qlora_eval.errors import InputError

    with pytest.raises(InputError, match="2-D"):
        quantize_roundtrip(weight.flatten(), QuantType.NF4)


def test_real_linear_weights_of_the_tiny_model(tiny_llama_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    weights = list(linear_weights(model))
    assert len(weights) == 2 * 7  # q k v o gate up down per layer; the LM head is not quantized
    assert all(w is not model.lm_head.weight for w in weights)
    report = measure(weights, source="tiny", types=(QuantType.NF4, QuantType.FP4, QuantType.INT8))
    assert report.n_params == sum(w.numel() for w in weights)
    assert report.types["nf4"].bits_per_param == 4.5
    assert report.types["nf4"].rel_error < report.types["fp4"].rel_error

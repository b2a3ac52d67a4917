"""The memory and generation benchmarks on a real CUDA device (skipped without one)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gpu


def test_memory_benchmark_on_cuda_reports_peaks() -> None:
    from qlora_eval.bench.memory import run_memory_benchmark

    result = run_memory_benchmark("tiny", seq_len=64, batch=2, device="cuda", warmup=1, steps=2)
    assert result.paged and result.optimizer == "bitsandbytes PagedAdamW32bit"
    assert result.peak_allocated_gib is not None and result.peak_reserved_gib is not None
    assert 0 < result.peak_allocated_gib <= result.peak_reserved_gib
    assert result.weights_allocated_gib is not None and result.weights_allocated_gib > 0
    assert result.hardware["gpu_name"]


def test_generate_benchmark_on_cuda() -> None:
    from qlora_eval.bench.throughput import run_generate_benchmark, shape_loader

    result = run_generate_benchmark("tiny", shape_loader("tiny", device="cuda"), batches=(1, 4), prompt_len=16,
                                    new_tokens=4)  # fmt: skip
    assert len(result.rows) == 4
    assert all(r.peak_allocated_gib is not None and r.peak_allocated_gib > 0 for r in result.rows)

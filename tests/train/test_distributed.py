"""The data-parallel launch path: torchrun with 2 CPU processes (gloo) against 1 process.

Same examples per optimizer step (2 processes x 1 pass = 1 process x 2 passes), no dropout: the
losses and the adapter must be the same, which shows that gradients are averaged correctly.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _train_args(tiny: Path, data: Path, out: Path, grad_accum: int) -> list[str]:
    return [
        "-m", "qlora_eval.cli.main", "train",
        "--base-model", str(tiny), "--dataset", str(data), "--dataset-format", "input-output",
        "--max-steps", "3", "--per-device-batch-size", "2", "--grad-accum", str(grad_accum),
        "--max-seq-len", "48", "--lora-r", "8", "--lora-dropout", "0", "--learning-rate", "5e-3",
        "--warmup-ratio", "0", "--compute-dtype", "float32", "--save-every", "3",
        "--output", str(out), "--json", str(out / "summary.json"), "--no-progress",
    ]  # fmt: skip


def test_two_gloo_processes_equal_one(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    data = tmp_path / "data.jsonl"
    rows = [{"input": f"Q{i}: what is {i} + {i}?", "output": f" {2 * i}" * (1 + i % 3)} for i in range(16)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    two = tmp_path / "two"
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
    ]
    subprocess.run(launcher + _train_args(tiny_llama_dir, data, two, 1), check=True, env=env, timeout=240)
    one = tmp_path / "one"
    subprocess.run([sys.executable, *_train_args(tiny_llama_dir, data, one, 2)], check=True, env=env, timeout=240)

    card_two = json.loads((two / "training.json").read_text())
    assert card_two["results"]["world_size"] == 2
    assert json.loads((one / "training.json").read_text())["results"]["world_size"] == 1
    losses_two = json.loads((two / "summary.json").read_text())["losses"]
    losses_one = json.loads((one / "summary.json").read_text())["losses"]
    assert len(losses_two) == 3
    assert losses_two == pytest.approx(losses_one, rel=1e-5)
    a, b = load_file(str(one / "adapter_model.safetensors")), load_file(str(two / "adapter_model.safetensors"))
    for key in a:
        assert (a[key] - b[key]).abs().max().item() < 1e-6, key
    assert max(a[k].abs().max().item() for k in a if "lora_B" in k) > 1e-3  # the adapter really trained

"""The training card (``training.json``), the loss plot and the ``--json`` summary."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from qlora_eval.train.config import TrainConfig
from qlora_eval.train.loop import TrainResult

CARD_FILE = "training.json"
PLOT_FILE = "loss.png"
_PACKAGES = ("qlora-eval", "torch", "transformers", "peft", "accelerate", "bitsandbytes", "datasets", "safetensors")


def versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape a run (``None`` when absent)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def hardware() -> dict[str, Any]:
    """The machine: CPU, core count and, where present, the CUDA devices."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
    }
    if "torch" in sys.modules:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["cuda"] = [
                {
                    "name": torch.cuda.get_device_name(i),
                    "memory_bytes": torch.cuda.get_device_properties(i).total_memory,
                }
                for i in range(torch.cuda.device_count())
            ]
            info["cuda_version"] = torch.version.cuda
    return info


def card(config: TrainConfig, result: TrainResult) -> dict[str, Any]:
    """Everything about a run, JSON-ready."""
    summary = asdict(result)
    summary.pop("history")
    summary.pop("losses")
    return {
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": config.to_dict(),
        "data": {
            "description": result.data_description,
            "sha256": result.data_sha256,
            "examples": result.num_examples,
        },
        "results": summary,
        "versions": versions(),
        "hardware": hardware(),
        "steps": result.history,
    }


def write_card(config: TrainConfig, result: TrainResult) -> Path:
    """Write ``training.json`` into the output folder; returns its path."""
    path = Path(config.output_dir) / CARD_FILE
    path.write_text(json.dumps(card(config, result), indent=1), encoding="utf-8")
    return path


def write_loss_plot(result: TrainResult, path: Path, title: str) -> Path:
    """A PNG of the loss per optimizer step."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    steps = [int(h["step"]) for h in result.history]
    ax.plot(steps, result.losses, marker="." if len(steps) < 60 else None, linewidth=1.2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (mean over target tokens)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    scored = [e for e in result.evaluations if "mmlu_accuracy" in e]
    if scored:  # MMLU during training, on its own axis
        ax2 = ax.twinx()
        ax2.plot([e["step"] for e in scored], [e["mmlu_accuracy"] for e in scored], "o-", color="tab:orange")
        ax2.set_ylabel("MMLU accuracy", color="tab:orange")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def summary_json(result: TrainResult) -> dict[str, Any]:
    """The ``--json`` output."""
    return {
        "losses": result.losses,
        "steps": result.steps,
        "tokens_per_second": result.tokens_per_second,
        "peak_memory_bytes": result.peak_memory_bytes,
    }

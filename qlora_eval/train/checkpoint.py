"""Checkpoints that let ``--resume`` continue exactly: adapter, optimizer, scheduler, RNG and history.

Fixes a flaw of the reference script, which saved only the adapter: a resumed run restarted the
optimizer moments and the warmup, so it diverged from the uninterrupted run.

Layout: ``OUTPUT/checkpoints/step-000123/`` with the adapter files, ``optimizer.pt``, ``scheduler.pt``,
``rng-rank<R>.pt`` per process and ``state.json``. A checkpoint is written under a ``.tmp`` name and
renamed when complete, so a crash never leaves a half-written one under the final name.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qlora_eval.errors import ConfigError, InputError
from qlora_eval.train.config import TrainConfig, differences_for_resume

STATE_FILE = "state.json"


@dataclass(frozen=True)
class ResumeState:
    """What a checkpoint restores besides tensors."""

    step: int  # optimizer steps completed
    history: list[dict[str, float]]
    train_seconds: float


def checkpoints_dir(output_dir: str) -> Path:
    return Path(output_dir) / "checkpoints"


def step_dir(output_dir: str, step: int) -> Path:
    return checkpoints_dir(output_dir) / f"step-{step:06d}"


def latest_checkpoint(output_dir: str) -> Path | None:
    """The complete checkpoint with the most steps, if any."""
    root = checkpoints_dir(output_dir)
    if not root.is_dir():
        return None
    done = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / STATE_FILE).is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1])) if done else None


def rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def tmp_dir(output_dir: str, step: int) -> Path:
    return step_dir(output_dir, step).with_name(step_dir(output_dir, step).name + ".tmp")


def write_rank_rng(output_dir: str, step: int, rank: int) -> None:
    """Every process stores its own RNG state (dropout masks differ per process)."""
    import torch

    path = tmp_dir(output_dir, step)
    path.mkdir(parents=True, exist_ok=True)
    torch.save(rng_state(), path / f"rng-rank{rank}.pt")


def write_main(
    output_dir: str,
    step: int,
    *,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    config: TrainConfig,
    history: list[dict[str, float]],
    train_seconds: float,
) -> Path:
    """Write the shared part (main process only, after every process wrote its RNG) and publish it."""
    import torch

    path = tmp_dir(output_dir, step)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path), safe_serialization=True)
    torch.save(optimizer.state_dict(), path / "optimizer.pt")
    torch.save(scheduler.state_dict(), path / "scheduler.pt")
    state = {"step": step, "config": config.to_dict(), "history": history, "train_seconds": train_seconds}
    (path / STATE_FILE).write_text(json.dumps(state, indent=1), encoding="utf-8")
    final = step_dir(output_dir, step)
    if final.exists():
        shutil.rmtree(final)
    path.rename(final)
    return final


def load(path: Path, *, model: Any, optimizer: Any, scheduler: Any, config: TrainConfig, rank: int) -> ResumeState:
    """Restore a checkpoint into the live objects.

    Raises:
        ConfigError: when the checkpoint was made with different settings (naming each difference).
        InputError: when a file of the checkpoint is missing.
    """
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    saved = TrainConfig.from_dict(state["config"])
    diffs = differences_for_resume(saved, config)
    if diffs:
        raise ConfigError(
            f"cannot resume from {path}: the settings differ ({'; '.join(diffs)}); "
            "rerun with the same settings or use a new --output"
        )
    rng_file = path / f"rng-rank{rank}.pt"
    for needed in (path / "adapter_model.safetensors", path / "optimizer.pt", path / "scheduler.pt", rng_file):
        if not needed.is_file():
            raise InputError(
                "checkpoint file missing; delete this checkpoint to resume from an earlier one", source=str(needed)
            )
    weights = load_file(str(path / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(model, weights)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise InputError(
            f"the checkpoint's adapter does not fit the model (unexpected {unexpected[:3]})", source=str(path)
        )
    device = next(p.device for p in model.parameters() if p.requires_grad)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device, weights_only=False))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    set_rng_state(torch.load(rng_file, weights_only=False))
    return ResumeState(
        step=int(state["step"]), history=list(state["history"]), train_seconds=float(state["train_seconds"])
    )

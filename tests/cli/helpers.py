"""Helpers for CLI tests: run ``qlora-eval`` in-process and write a small tournament of QLoRA review files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from qlora_eval.cli.main import main
from tests.interchange.fixtures import write_qlora

MODELS = ("alpha", "bravo", "charlie", "delta")
STRENGTH = {"alpha": 1150.0, "bravo": 1050.0, "charlie": 950.0, "delta": 850.0}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run one command; returns (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_tournament(
    folder: Path,
    *,
    prompts: int = 30,
    seed: int = 0,
    models: Sequence[str] = MODELS,
    shift: dict[str, float] | None = None,
) -> Path:
    """Both orders of every pair on ``prompts`` prompts, verdicts drawn from fixed strengths (+ ``shift``)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    strength = {m: STRENGTH.get(m, 1000.0) + (shift or {}).get(m, 0.0) for m in models}
    for a in models:
        for b in models:
            if a == b:
                continue
            p_a = 1 / (1 + 10 ** ((strength[b] - strength[a]) / 400))
            scores: list[int] = []
            for _ in range(prompts):
                u = rng.random()
                scores.append(-1 if u < 0.03 else 3 if u < 0.15 else (1 if rng.random() < p_a else 2))
            write_qlora(folder, a, b, scores)
    return folder

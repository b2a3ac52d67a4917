"""The rating kernels' numba cache: used by a fresh process, and an explicit fallback when it cannot be."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qlora_eval.rating.jit import cached_njit


def test_without_a_cache_folder_it_compiles_uncached_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    # A function compiled from a string has no source file, so numba finds no cache folder for it
    # (the same refusal as a read-only install without a writable home).
    namespace: dict[str, Any] = {}
    exec("def twice(x):\n    return 2 * x\n", namespace)  # a fileless function on purpose
    with caplog.at_level(logging.WARNING, logger="qlora_eval.rating.jit"):
        compiled = cached_njit()(namespace["twice"])
    assert compiled(21) == 42
    assert "cannot cache" in caplog.text and "NUMBA_CACHE_DIR" in caplog.text


@pytest.mark.slow
def test_a_fresh_process_loads_the_kernels_from_the_cache(tmp_path: Path) -> None:
    """Two processes with an empty NUMBA_CACHE_DIR: the first compiles and saves, the second only loads."""
    code = (
        "import numpy as np\n"
        "from qlora_eval.rating.elo import fit_elo\n"
        "a = np.array([0, 1, 2, 0]); b = np.array([1, 2, 0, 2]); s = np.array([1.0, 0.5, 0.0, 1.0])\n"
        "print(fit_elo(a, b, s, 3, 8, np.random.default_rng(0)).mean.round(6).tolist())\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "NUMBA_DEBUG_CACHE": "1"}
    first = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    assert "[cache] data saved" in first.stdout
    assert "[cache] data loaded" in second.stdout and "[cache] data saved" not in second.stdout
    assert first.stdout.splitlines()[-1] == second.stdout.splitlines()[-1]

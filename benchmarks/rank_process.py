"""Time ``qlora-eval rank`` as a whole process on 4,467 battles between 8 models.

Writes QLoRA-format review files (both presentation orders of all 28 pairs on the 80 Vicuna prompt ids,
verdicts drawn from known strengths with a first-position bias and ~2% unparsable reviews; 13 lines
dropped to make 4,467) into a temporary folder, then runs the CLI through ``subprocess`` for
Elo (10,000 orderings) and Bradley-Terry (1,000 bootstrap rounds), ``--repeat`` times each, and prints JSON:
the fastest and median wall and CPU seconds per method (process start to exit), plus the time of
``python -c 'import qlora_eval.cli.rank_cmd'`` alone.

Usage: python benchmarks/rank_process.py [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODELS = [
    "guanaco-65b",
    "guanaco-33b",
    "vicuna-13b",
    "guanaco-13b",
    "chatgpt",
    "bard",
    "guanaco-7b",
    "alpaca-13b",
]
STRENGTH = dict(zip(MODELS, [1120.0, 1090.0, 1040.0, 1030.0, 1010.0, 980.0, 940.0, 880.0], strict=True))
N_BATTLES = 4467
PROMPTS = 80


def write_fixture(folder: Path, seed: int = 0) -> int:
    """Write the review files; returns the number of lines (battles) written."""
    rng = np.random.default_rng(seed)
    files: list[tuple[str, str, list[int]]] = []
    for a in MODELS:
        for b in MODELS:
            if a == b:
                continue
            p_a = 1.0 / (1.0 + 10 ** ((STRENGTH[b] - STRENGTH[a] - 35.0) / 400.0))  # +35: first-position bias
            scores = []
            for _ in range(PROMPTS):
                u = rng.random()
                if u < 0.02:
                    scores.append(-1)
                elif u < 0.17:
                    scores.append(3)
                else:
                    scores.append(1 if rng.random() < p_a else 2)
            files.append((a, b, scores))
    total = sum(len(s) for _, _, s in files)
    drop = total - N_BATTLES
    files[-1] = (files[-1][0], files[-1][1], files[-1][2][: PROMPTS - drop])
    written = 0
    for a, b, scores in files:
        path = folder / f"{a}-vs-{b}-gpt-4-reviewer-threeclass.jsonl"
        lines = [json.dumps({"question_id": q + 1, "text": "review", "score": s}) for q, s in enumerate(scores)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written += len(lines)
    return written


def _time(cmd: list[str], repeat: int) -> dict[str, float]:
    """Wall seconds of the whole process, its CPU seconds (user + sys, less sensitive to a busy machine), and the
    machine's 1-minute load average before and after (other jobs on the machine inflate wall seconds)."""
    seconds, cpu = [], []
    load_before = round(os.getloadavg()[0], 2)
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return {
        "min_s": round(min(seconds), 3),
        "median_s": round(statistics.median(seconds), 3),
        "min_cpu_s": round(min(cpu), 3),
        "median_cpu_s": round(statistics.median(cpu), 3),
        "load_1min_before": load_before,
        "load_1min_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", default=None, help="write the fixture here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        battles = write_fixture(folder)
        exe = [sys.executable, "-m", "qlora_eval", "rank", str(folder), "--format", "qlora", "--seed", "0"]
        env_note = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
        results = {
            "battles": battles,
            "models": len(MODELS),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "env": env_note,
            "import_rank_cmd": _time([sys.executable, "-c", "import qlora_eval.cli.rank_cmd"], args.repeat),
            "python_startup": _time([sys.executable, "-c", "pass"], args.repeat),
            "elo_10000_orderings": _time([*exe, "--method", "elo", "--rounds", "10000"], args.repeat),
            "bt_1000_bootstrap": _time([*exe, "--method", "bt", "--rounds", "1000"], args.repeat),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

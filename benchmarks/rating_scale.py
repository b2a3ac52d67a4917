"""Rating at arena scale, as whole processes: ``qlora-eval rank`` against FastChat and the numpy reference path.

Writes three synthetic verdict sets into a temporary folder, then times whole processes (start to exit,
wall seconds and peak RSS from ``os.wait4``), each ``--repeat`` times (the fastest is kept):

* ``vicuna``: 4,467 QLoRA-format verdicts, 8 models, 80 prompts (the fixture of ``rank_process.py``);
  Elo over 10,000 orderings.
* ``oa``: 38,544 QLoRA-format verdicts, 7 models, 953 prompts (the OpenAssistant benchmark's size);
  Elo over 10,000 orderings.
* ``arena``: a JSONL Arena battle file of 1,000,000 battles among 200 models, one battle per
  ``question_id``; Bradley-Terry with 1,000 bootstrap rounds.

Each set runs as (1) ``qlora-eval rank`` itself (Elo with ``--elo-intervals orderings``, the issue's
measure; the default, which adds prompt-bootstrap rounds for the interval, is timed as well), (2) a
child process of this script that reads the same files through ``qlora_eval.interchange`` and runs the
numpy reference path (``fit_elo_reference`` / ``bootstrap_bradley_terry_dense``; for the arena file the
dense path cannot run: its per-prompt tables need ``P m^2`` floats, which is reported instead), and (3)
a child process that loads the same battles into pandas and runs FastChat's ``compute_bootstrap_elo`` /
``compute_bootstrap_bt``, re-implemented below from ``fastchat/serve/monitor/rating_systems.py`` in
github.com/lm-sys/FastChat (Apache-2.0): same preprocessing, same vectorised Elo over bootstrap samples,
same multinomial draws over unique (pair, outcome) rows and per-round scipy L-BFGS-B fits in a
``multiprocessing`` pool.

Our processes run once untimed first, so numba's on-disk cache holds the compiled kernels (the first run
after an install compiles them: its time is printed as ``first_run_s``). Prints one JSON document with
the machine's load average next to every figure.

Usage: python benchmarks/rating_scale.py [--repeat 3] [--only vicuna,oa,arena] [--skip-fastchat-bt]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rank_process import write_fixture  # the Vicuna-shaped fixture, shared with rank_process.py

OA_MODELS = ["guanaco-65b", "guanaco-33b", "vicuna-13b", "guanaco-13b", "chatgpt", "guanaco-7b", "alpaca-13b"]
OA_PROMPTS = 953
OA_BATTLES = 38_544
ARENA_BATTLES = 1_000_000
ARENA_MODELS = 200


def write_oa(folder: Path, seed: int = 1) -> int:
    """QLoRA-format review files: 7 models, both orders of every pair on 953 prompts, cut to 38,544 lines."""
    rng = np.random.default_rng(seed)
    strength = dict(zip(OA_MODELS, np.linspace(1120.0, 900.0, len(OA_MODELS)), strict=True))
    pairs = [(a, b) for a in OA_MODELS for b in OA_MODELS if a != b]
    per_pair = [OA_PROMPTS] * len(pairs)
    drop = OA_PROMPTS * len(pairs) - OA_BATTLES  # 1,482 lines: taken from the last pairs' files
    for i in range(len(pairs) - 1, -1, -1):
        cut = min(drop, per_pair[i])
        per_pair[i] -= cut
        drop -= cut
    written = 0
    for (a, b), count in zip(pairs, per_pair, strict=True):
        if count == 0:
            continue
        p_a = 1.0 / (1.0 + 10 ** ((strength[b] - strength[a] - 35.0) / 400.0))
        u, v = rng.random(count), rng.random(count)
        scores = np.where(u < 0.02, -1, np.where(u < 0.17, 3, np.where(v < p_a, 1, 2)))
        lines = [json.dumps({"question_id": q + 1, "text": "review", "score": int(s)}) for q, s in enumerate(scores)]
        (folder / f"{a}-vs-{b}-gpt-4-reviewer-threeclass.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        written += count
    return written


def write_arena(path: Path, seed: int = 2) -> int:
    """1,000,000 Arena battles among 200 models (logistic outcomes, 20% ties), one question per battle."""
    rng = np.random.default_rng(seed)
    n, m = ARENA_BATTLES, ARENA_MODELS
    strength = rng.normal(0.0, 1.0, m)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    p_a = 1.0 / (1.0 + np.exp(strength[b] - strength[a]))
    u, v = rng.random(n), rng.random(n)
    winner = np.where(u < 0.15, "tie", np.where(u < 0.2, "tie (bothbad)", np.where(v < p_a, "model_a", "model_b")))
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            out.write(
                f'{{"question_id": "q{i:07d}", "model_a": "model-{a[i]:03d}", "model_b": "model-{b[i]:03d}", '
                f'"winner": "{winner[i]}"}}\n'
            )
    return n


# ---------------------------------------------------------------------------------------------------
# Child processes (run as `python rating_scale.py --child KIND FORMAT INPUT`): each prints its JSON.


def _load_battles(fmt: str, inputs: str) -> list[Any]:
    from qlora_eval.interchange import ImportOptions, read_inputs

    batch = read_inputs([inputs], fmt, ImportOptions(prompt_set=None, reviewer="gpt-4"))
    return [j.to_battle() for j in batch.judgments]


def _child_numpy(kind: str, fmt: str, inputs: str) -> dict[str, Any]:
    from qlora_eval.rating import battle_arrays, bootstrap_bradley_terry_dense, fit_elo_reference

    arrays = battle_arrays(_load_battles(fmt, inputs))
    start = time.perf_counter()
    if kind == "numpy-elo":
        fit_elo_reference(arrays.a_idx, arrays.b_idx, arrays.score_a, arrays.n_models, 10_000, np.random.default_rng(0))
    else:
        bootstrap_bradley_terry_dense(
            arrays.a_idx,
            arrays.b_idx,
            arrays.score_a,
            arrays.prompt_idx,
            arrays.n_models,
            1_000,
            np.random.default_rng(0),
        )
    return {"function_s": round(time.perf_counter() - start, 3)}


def _fastchat_frame(fmt: str, inputs: str) -> Any:
    import pandas as pd

    battles = _load_battles(fmt, inputs)
    winner = {"A": "model_a", "B": "model_b", "TIE": "tie", "BOTH_BAD": "tie (bothbad)"}
    rows = [(b.model_a, b.model_b, winner[b.verdict.name]) for b in battles if b.verdict.name in winner]
    return pd.DataFrame(rows, columns=["model_a", "model_b", "winner"])


def _fastchat_matchups(df: Any) -> tuple[np.ndarray, list[str]]:
    # As FastChat's get_matchups_models: factorize both model columns together.
    import pandas as pd

    codes, models = pd.factorize(pd.concat([df["model_a"], df["model_b"]]))
    n = len(df)
    return np.column_stack([codes[:n], codes[n:]]), list(models)


def fastchat_bootstrap_elo(df: Any, num_round: int, k: float = 4.0, base: float = 10.0, scale: float = 400.0) -> Any:
    """FastChat's compute_bootstrap_elo (rating_systems.py): ``num_round`` bootstrap samples of the battles,
    replayed together by fit_vectorized_elo, one battle position at a time."""
    import pandas as pd
    from scipy.special import expit

    matchups, models = _fastchat_matchups(df)
    outcomes = np.full(len(df), 0.5)
    outcomes[(df["winner"] == "model_a").to_numpy()] = 1.0
    outcomes[(df["winner"] == "model_b").to_numpy()] = 0.0
    sample_indices = np.random.randint(low=0, high=len(df), size=(len(df), num_round))
    alpha = math.log(base) / scale
    ratings = np.zeros((num_round, len(models)))
    rows = np.arange(num_round)
    for battle in sample_indices:
        ia, ib = matchups[battle, 0], matchups[battle, 1]
        update = k * (outcomes[battle] - expit(alpha * (ratings[rows, ia] - ratings[rows, ib])))
        ratings[rows, ia] += update
        ratings[rows, ib] -= update
    frame = pd.DataFrame(ratings + 1000.0, columns=models)
    return frame[frame.median().sort_values(ascending=False).index]


def _bt_loss_and_grad(
    ratings: np.ndarray, matchups: np.ndarray, outcomes: np.ndarray, weights: np.ndarray, alpha: float
) -> tuple[float, np.ndarray]:
    from scipy.special import expit

    r = ratings[matchups]
    probs = expit(alpha * (r[:, 0] - r[:, 1]))
    loss = -((np.log(probs) * outcomes + np.log(1.0 - probs) * (1.0 - outcomes)) * weights).sum()
    per_matchup = -alpha * (outcomes - probs) * weights
    grad = np.zeros_like(ratings)
    np.add.at(grad, matchups[:, [0, 1]], per_matchup[:, None] * np.array([1.0, -1.0]))
    return float(loss), grad


def _fit_bt(matchups: np.ndarray, outcomes: np.ndarray, weights: np.ndarray, n_models: int, alpha: float) -> Any:
    from scipy.optimize import minimize

    result = minimize(
        _bt_loss_and_grad,
        np.zeros(n_models),
        args=(matchups, outcomes, weights, alpha),
        jac=True,
        method="L-BFGS-B",
        options={"disp": False, "maxiter": 100, "gtol": 1e-6},
    )
    return result["x"]


def _fit_bt_weights(args: tuple[np.ndarray, np.ndarray, int, np.ndarray]) -> Any:
    matchups, outcomes, n_models, weights = args
    return _fit_bt(matchups, outcomes, weights, n_models, math.log(10.0))


def fastchat_bootstrap_bt(df: Any, num_round: int) -> Any:
    """FastChat's compute_bootstrap_bt (rating_systems.py): unique (model_a, model_b, outcome) rows with
    counts, multinomial bootstrap weights over them, one scipy L-BFGS-B fit per round in a process pool."""
    import multiprocessing as mp

    import pandas as pd

    schedule = np.full((len(df), 3), 1, dtype=np.int32)
    schedule[:, [0, 1]], models = _fastchat_matchups(df)
    schedule[(df["winner"] == "model_a").to_numpy(), 2] = 2
    schedule[(df["winner"] == "model_b").to_numpy(), 2] = 0
    unique_rows, counts = np.unique(schedule, return_counts=True, axis=0)
    matchups, outcomes = unique_rows[:, [0, 1]], unique_rows[:, 2].astype(np.float64) / 2.0
    weights = counts.astype(np.float64)
    draws = np.random.default_rng(0).multinomial(len(df), weights / weights.sum(), size=num_round)
    boot_weights = draws.astype(np.float64) / len(df)
    with mp.Pool(os.cpu_count()) as pool:
        results = list(
            pool.imap_unordered(_fit_bt_weights, [(matchups, outcomes, len(models), w) for w in boot_weights])
        )
    ratings = np.array(results) * 400.0 + 1000.0
    frame = pd.DataFrame(ratings, columns=models)
    return frame[frame.median().sort_values(ascending=False).index]


def _child_fastchat(kind: str, fmt: str, inputs: str) -> dict[str, Any]:
    df = _fastchat_frame(fmt, inputs)
    start = time.perf_counter()
    if kind == "fastchat-elo":
        fastchat_bootstrap_elo(df, 10_000)
    else:
        fastchat_bootstrap_bt(df, 1_000)
    return {"function_s": round(time.perf_counter() - start, 3)}


# ---------------------------------------------------------------------------------------------------
# The parent: time whole processes.


def run_process(cmd: list[str]) -> dict[str, Any]:
    """Wall seconds and peak RSS (MB) of one whole process; its stdout parsed as JSON when it is JSON."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out_file, stderr=err_file)
        _, status, usage = os.wait4(proc.pid, 0)  # reaps the child: its own rusage, peak RSS included
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime  # all threads; on a busy machine a steadier figure than wall time
    result: dict[str, Any] = {"s": round(seconds, 3), "cpu_s": round(cpu, 3), "load_1min_before": round(load, 2)}
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # Linux: KiB
    with contextlib.suppress(ValueError):  # our own children print JSON; the CLI prints a table
        result.update(json.loads(out.decode()))
    return result


def fastest(cmd: list[str], repeat: int) -> dict[str, Any]:
    runs = [run_process(cmd) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["s"])
    best["all_s"] = [r["s"] for r in runs]
    best["min_cpu_s"] = min(r["cpu_s"] for r in runs)
    best["peak_rss_mb"] = max(r.get("peak_rss_mb", 0.0) for r in runs)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="vicuna,oa,arena")
    parser.add_argument("--skip-fastchat-bt", action="store_true", help="skip FastChat's BT on the arena file")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "FORMAT", "INPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, fmt, inputs = args.child
        child = _child_fastchat if kind.startswith("fastchat") else _child_numpy
        print(json.dumps(child(kind, fmt, inputs)))
        return
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "load_1_5_15_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "timing": (
            f"whole processes, fastest of {args.repeat} (peak RSS: largest); s: wall clock, cpu_s: user + system "
            "CPU seconds of the process and its threads/children (less sensitive to other work on the machine)"
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in args.only.split(","):
            if name == "arena":
                data, fmt, n = root / "arena.jsonl", "arena", 0
                n = write_arena(data)
                method, rounds = "bt", 1_000
            else:
                data, fmt = root / name, "qlora"
                data.mkdir()
                n = write_fixture(data) if name == "vicuna" else write_oa(data)
                method, rounds = "elo", 10_000
            rank = [sys.executable, "-m", "qlora_eval", "rank", str(data), "--format", fmt]
            rank += ["--method", method, "--rounds", str(rounds), "--seed", "0"]
            if method == "elo":
                # The goal: Elo over 10,000 orderings. The CLI's default adds 10,000 prompt-bootstrap
                # rounds for the interval (issue 13); that run is timed too, as qlora_eval_rank_default.
                default_rank, rank = rank, [*rank, "--elo-intervals", "orderings"]
            first = run_process(rank)  # fills numba's cache after an install; later runs load it
            entry: dict[str, Any] = {"battles": n, "method": method, "rounds": rounds, "first_run_s": first["s"]}
            entry["qlora_eval_rank"] = fastest(rank, args.repeat)
            entry["command"] = " ".join(["qlora-eval", *rank[3:]]).replace(str(root), "$TMP")
            if method == "elo":
                entry["qlora_eval_rank_default"] = fastest(default_rank, args.repeat)
            if name == "arena":
                prompts, models = ARENA_BATTLES, ARENA_MODELS
                entry["numpy_reference"] = {
                    "skipped": f"dense (P, m, m) tables: {prompts * models * models * 16 / 2**30:.0f} GiB of float64"
                }
            else:
                entry["numpy_reference"] = fastest([*me, f"numpy-{method}", fmt, str(data)], args.repeat)
            if not (name == "arena" and args.skip_fastchat_bt):
                fastchat_repeat = 1 if name == "arena" else args.repeat
                entry["fastchat"] = fastest([*me, f"fastchat-{method}", fmt, str(data)], fastchat_repeat)
            ours = entry["qlora_eval_rank"]["s"]
            entry["ratios"] = {
                key: round(entry[key]["s"] / ours, 2)
                for key in ("numpy_reference", "fastchat")
                if key in entry and "s" in entry[key]
            }
            if "qlora_eval_rank_default" in entry and "fastchat" in entry:
                entry["ratios"]["fastchat_vs_default"] = round(
                    entry["fastchat"]["s"] / entry["qlora_eval_rank_default"]["s"], 2
                )
            for key in ("numpy_reference", "fastchat"):
                if key in entry and "min_cpu_s" in entry[key]:
                    entry["ratios"][f"{key}_cpu"] = round(
                        entry[key]["min_cpu_s"] / entry["qlora_eval_rank"]["min_cpu_s"], 2
                    )
            if "fastchat" in entry:
                entry["ratios"]["fastchat_function_only"] = round(entry["fastchat"]["function_s"] / ours, 2)
            entry["load_1min_after"] = round(os.getloadavg()[0], 2)
            results[name] = entry
            print(json.dumps({name: entry}), file=sys.stderr)  # progress
    results["machine"]["load_1_5_15_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

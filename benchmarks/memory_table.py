"""Training-memory table: QLoRA finetuning steps on random LLaMA-shaped models, one process per row.

Each row runs ``python -m qlora_eval bench memory`` in its own process so every peak is measured
on a fresh CUDA context (no memory left over from the previous model). Prints the table as JSON
and, with ``--out``, writes ``memory_<tag>.json`` and ``memory_<tag>.png``.

    python benchmarks/memory_table.py --out benchmarks/results --tag h100
    python benchmarks/memory_table.py --shapes tiny --seq-lens 32 --device cpu   # CPU smoke run

The paper's claims checked on the plot: 33B finetunes in under 24 GB, 65B in under 48 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CLAIMS_GIB = {"llama-33b": 24.0, "llama-65b": 48.0}


def run_row(shape: str, seq_len: int, args: argparse.Namespace) -> dict[str, Any]:
    """One ``bench memory`` run in a child process; a failure (OOM, timeout) becomes an ``error`` row."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        command = [
            sys.executable, "-m", "qlora_eval", "bench", "memory",
            "--shape", shape, "--seq-len", str(seq_len), "--batch", str(args.batch),
            "--method", args.method, "--device", args.device,
            "--warmup", str(args.warmup), "--steps", str(args.steps), "--json", str(out),
        ]  # fmt: skip
        start = time.perf_counter()
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=args.row_timeout, env=os.environ)
        except subprocess.TimeoutExpired:
            return {"shape": shape, "seq_len": seq_len, "error": f"timed out after {args.row_timeout} s"}
        wall = time.perf_counter() - start
        if proc.returncode != 0 or not out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            return {"shape": shape, "seq_len": seq_len, "error": " | ".join(tail), "wall_s": wall}
        row: dict[str, Any] = json.loads(out.read_text())
        row["wall_s"] = wall
        print(
            f"{shape} seq {seq_len}: peak reserved {row.get('peak_reserved_gib')} GiB ({wall:.0f} s)", file=sys.stderr
        )
        return row


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Grouped bars of peak reserved memory per shape and sequence length, with the paper's limits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r and r.get("peak_reserved_gib") is not None]
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    seq_lens = sorted({r["seq_len"] for r in ok})
    width = 0.8 / max(1, len(seq_lens))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for k, seq_len in enumerate(seq_lens):
        xs, reserved, allocated = [], [], []
        for i, shape in enumerate(shapes):
            match = [r for r in ok if r["shape"] == shape and r["seq_len"] == seq_len]
            if match:
                xs.append(i + (k - (len(seq_lens) - 1) / 2) * width)
                reserved.append(match[0]["peak_reserved_gib"])
                allocated.append(match[0]["peak_allocated_gib"])
        bars = ax.bar(xs, reserved, width, label=f"seq {seq_len}: peak reserved")
        ax.scatter(xs, allocated, marker="_", s=300, color="black", zorder=3)
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    for i, shape in enumerate(shapes):
        if shape in CLAIMS_GIB:
            limit = CLAIMS_GIB[shape]
            ax.hlines(limit, i - 0.45, i + 0.45, colors="red", linestyles="dashed")
            ax.text(i + 0.45, limit + 1.5, f"paper: < {limit:.0f} GB", ha="right", color="red", fontsize=8)
    for r in rows:
        if "error" in r and r["shape"] in shapes:
            ax.text(shapes.index(r["shape"]), 1, f"seq {r['seq_len']}: failed", ha="center", fontsize=7, rotation=90)
    ax.scatter([], [], marker="_", s=300, color="black", label="peak allocated")
    ax.set_xticks(range(len(shapes)), shapes)
    ax.set_ylabel("GiB")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="llama-7b,llama-13b,llama-33b,llama-65b")
    parser.add_argument("--seq-lens", default="512,2048")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--method", choices=["qlora", "lora16"], default="qlora")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--row-timeout", type=int, default=240, help="seconds per row before it counts as failed")
    parser.add_argument("--out", type=Path, default=None, help="folder for memory_<tag>.json and .png")
    parser.add_argument("--tag", default="run")
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only (no matplotlib needed)")
    parser.add_argument("--from-json", type=Path, default=None, help="only re-plot a table written before")
    args = parser.parse_args()
    if args.from_json is not None:
        table = json.loads(args.from_json.read_text())
        out = args.out or args.from_json.parent
        gpu = next((r["hardware"]["gpu_name"] for r in table["rows"] if "hardware" in r), None) or "cpu"
        title = f"{table['method']} finetuning peak memory, batch {table['batch']} ({gpu})"
        plot(table["rows"], out / f"{args.from_json.stem}.png", title)
        return 0

    rows: list[dict[str, Any]] = []
    table = {"benchmark": "memory", "method": args.method, "batch": args.batch, "rows": rows}
    for shape in args.shapes.split(","):
        for seq_len in args.seq_lens.split(","):
            rows.append(run_row(shape, int(seq_len), args))
            if args.out is not None:  # after every row, so a run cut short keeps what it measured
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / f"memory_{args.tag}.json").write_text(json.dumps(table, indent=2) + "\n")
    print(json.dumps(table, indent=2))
    if args.out is not None and not args.no_plot:
        gpu = next((r["hardware"]["gpu_name"] for r in rows if "hardware" in r), None) or args.device
        plot(
            rows,
            args.out / f"memory_{args.tag}.png",
            f"{args.method} finetuning peak memory, batch {args.batch} ({gpu})",
        )
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

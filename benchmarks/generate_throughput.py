"""Generation throughput of a model (or a random model of a shape), bf16 vs NF4, batch 1 and 32.

Runs ``python -m qlora_eval bench generate`` and prints its JSON; with ``--out`` also writes
``generate_<tag>.json`` and ``generate_<tag>.png`` (prefill and decode tokens/s per cell).

    python benchmarks/generate_throughput.py --shape llama-7b --out benchmarks/results --tag 7b_h100
    python benchmarks/generate_throughput.py --shape tiny --device cpu --prompt-len 16 --new-tokens 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def plot(result: dict[str, Any], path: Path) -> None:
    """Two panels: prefill and decode tokens/s for each (precision, batch) cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    labels = [f"{r['precision']}\nbatch {r['batch']}" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, key, title in zip(
        axes, ["prefill_tokens_per_s", "decode_tokens_per_s"], ["prefill", "decode"], strict=True
    ):
        bars = ax.bar(
            range(len(rows)), [r[key] for r in rows], color=["C0" if r["precision"] == "bf16" else "C1" for r in rows]
        )
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
        ax.set_xticks(range(len(rows)), labels, fontsize=8)
        ax.set_title(f"{title} tokens/s")
    gpu = result["hardware"].get("gpu_name") or result["device"]
    fig.suptitle(f"{result['model']} generation ({gpu})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--shape")
    what.add_argument("--model")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--prompt-len", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--tag", default="run")
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only (no matplotlib needed)")
    parser.add_argument("--from-json", type=Path, default=None, help="only re-plot a result written before")
    args = parser.parse_args()
    if args.from_json is not None:
        plot(json.loads(args.from_json.read_text()), (args.out or args.from_json.parent) / f"{args.from_json.stem}.png")
        return 0

    if not args.shape and not args.model:
        parser.error("give --shape or --model")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "generate.json"
        target = ["--shape", args.shape] if args.shape else ["--model", args.model]
        command = [
            sys.executable, "-m", "qlora_eval", "bench", "generate", *target,
            "--device", args.device, "--batch-sizes", args.batch_sizes,
            "--prompt-len", str(args.prompt_len), "--new-tokens", str(args.new_tokens), "--json", str(out),
        ]  # fmt: skip
        proc = subprocess.run(command, text=True, stdout=sys.stderr)
        if proc.returncode != 0:
            return proc.returncode
        result = json.loads(out.read_text())
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"generate_{args.tag}.json").write_text(json.dumps(result, indent=2) + "\n")
        if not args.no_plot:
            plot(result, args.out / f"generate_{args.tag}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

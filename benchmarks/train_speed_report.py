"""The ``combine`` part of ``train_speed.py``: the parts' JSON into one result with the ratios."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _mem(entry: dict[str, Any]) -> float:
    """Peak reserved + paged optimizer state (the issue's memory measure), GiB."""
    return float(entry["peak_reserved_gib"]) + float(entry.get("optimizer_state_gib", 0.0))


def ratios(ref: dict[str, Any], ours: dict[str, Any]) -> dict[str, float]:
    """Speed ratio and memory ratio of one of our entries against one reference entry."""
    return {
        "speed_ratio": ours["real_tokens_per_second"] / ref["real_tokens_per_second"],
        "memory_ratio_reserved_plus_optimizer": _mem(ours) / _mem(ref),
        "allocated_ratio": ours["peak_allocated_gib"] / ref["peak_allocated_gib"],
    }


def loss_match(ref_losses: list[float], our_losses: list[float]) -> dict[str, Any]:
    """Per-step relative difference of the two loss curves over their common steps."""
    n = min(len(ref_losses), len(our_losses))
    rel = [abs(a - b) / abs(a) for a, b in zip(ref_losses[:n], our_losses[:n], strict=True)]
    worst = max(rel)
    return {"steps": n, "max_relative_difference": worst, "relative_differences": rel, "within_1_percent": worst < 0.01}


def combine(args: argparse.Namespace) -> None:
    from qlora_eval.train.card import hardware, versions

    work = Path(args.work)
    script, ref, ours = _load(work / "ref_script.json"), _load(work / "reference.json"), _load(work / "ours.json")
    result: dict[str, Any] = {
        "benchmark": "qlora-train-speed",
        "model": "random-initialised LLaMA-7B shape, SmolLM2 tokenizer (49,152 tokens), NF4 + double quant",
        "data": "OpenAssistant questions as Guanaco texts (input + ' ' + output), 10 steps x 16 sequences",
        "timing": "real (non-padding) tokens/s over the steps after the first two, device synchronised",
        "reference_script": {k: v for k, v in script.items() if k != "losses"},
        "reference": ref,
        "ours": ours,
        "summary": {},
    }
    summary = result["summary"]
    if script and ref:
        summary["reference_vs_script"] = ref["oa"]["real_tokens_per_second"] / script["real_tokens_per_second"]
        summary["reference_within_10_percent_of_script"] = abs(summary["reference_vs_script"] - 1) <= 0.10
    if ref and ours:
        for name, entry in ours.get("variants", {}).items():
            if "error" not in entry and "oa" in ref:
                summary[f"oa_{name}"] = ratios(ref["oa"], entry)
        for b in (1, 4):
            if f"fixed_b{b}" in ref and f"fixed_b{b}" in ours:
                summary[f"fixed_2048_b{b}"] = ratios(ref[f"fixed_b{b}"], ours[f"fixed_b{b}"])
        if "loss_run" in ref and "loss_run" in ours:
            summary["loss_match"] = loss_match(ref["loss_run"]["losses"], ours["loss_run"]["losses"])
            summary["adapter_reload"] = ours["loss_run"]["adapter_reload"]
    # the GPU machine's, as the ours part recorded them (combine itself may run elsewhere)
    result["versions"] = ours.get("versions") or versions()
    result["hardware"] = ours.get("hardware") or hardware()
    text = json.dumps(result, indent=1)
    print(json.dumps(summary, indent=1))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + "\n", encoding="utf-8")

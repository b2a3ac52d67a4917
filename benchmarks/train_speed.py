"""QLoRA training speed: ``qlora-eval train`` against plain transformers.Trainer + peft + bitsandbytes.

One GPU session, each part in its own process (so peak memory is each part's own):

    python benchmarks/train_speed.py prepare   --work /tmp/ts --tokenizer .gpu/tok   # random LLaMA-7B shape
    python ../shared/gpu/ref_hf_trainer.py /tmp/ts/model $DATA /tmp/ts/ref_script.json   # the issue's script
    python benchmarks/train_speed.py reference --work /tmp/ts                         # Trainer, 4 runs
    python benchmarks/train_speed.py ours      --work /tmp/ts                         # our step, levers, train()
    python benchmarks/train_speed.py combine   --work /tmp/ts --output benchmarks/results/train_speed_h200.json

The model is a random-initialised LLaMA-7B shape with SmolLM2's tokenizer (49,152 tokens), saved once
as a bf16 safetensors folder that both sides load in 4-bit NF4. Data: ``--data`` (OpenAssistant
questions, ``input + " " + output`` as a Guanaco text); both sides train 10 optimizer steps of 16
sequences; real (non-padding) tokens per second over the steps after the first two, with the device
synchronised; peak allocated and reserved memory, and the paged optimizer state (outside torch's
allocator). Also the fixed 2,048-token microbenchmark at batch 1 and 4, and the loss-equivalence run
(sequential order, loss on the whole text, 20 steps) whose adapter is reloaded with plain peft.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

LLAMA_7B = {
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
}
DEFAULT_DATA = "../shared/data/oa_questions.jsonl"


def texts_of(path: str) -> list[str]:
    """Guanaco texts of the OpenAssistant questions file (its ``input`` already holds ``### Human: ...``)."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["input"] + " " + r["output"] for r in rows]


def read_part(path: Path) -> dict[str, Any]:
    """A part's earlier JSON (parts may run in separate calls), or an empty dict."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def prepare(args: argparse.Namespace) -> None:
    """Build and save the random LLaMA-7B-shaped model (bf16) with the tokenizer, and the Guanaco JSONL."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    work = Path(args.work)
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    config = LlamaConfig(**LLAMA_7B, vocab_size=len(tok), max_position_embeddings=4096, tie_word_embeddings=False)
    config.bos_token_id, config.eos_token_id = tok.bos_token_id, tok.eos_token_id
    torch.manual_seed(args.seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.save_pretrained(work / "model", safe_serialization=True)
    tok.save_pretrained(work / "model")
    with open(work / "guanaco.jsonl", "w", encoding="utf-8") as fh:
        for text in texts_of(args.data):
            fh.write(json.dumps({"text": text}) + "\n")


def reference(args: argparse.Namespace) -> None:
    """The Trainer reference: OA speed run, fixed 2,048 at batch 1 and 4, sequential 20-step loss run."""
    from train_speed_reference import fixed_features, guanaco_features, load_prepared_base, run_reference

    work = Path(args.work)
    base, tok, load_s = load_prepared_base(str(work / "model"))
    feats = guanaco_features(tok, texts_of(args.data))
    out: dict[str, Any] = read_part(work / "reference.json")
    out["load_seconds"] = load_s
    if "oa" in args.parts:
        out["oa"] = run_reference(
            base, tok, feats, steps=args.steps, per_device=1, accum=16, sampling="group_by_length"
        )
        print(json.dumps({k: v for k, v in out["oa"].items() if k != "losses"}), flush=True)
    for b in (1, 4) if "fixed" in args.parts else ():
        fixed = fixed_features(len(tok), 2048, b * args.fixed_steps, args.seed)
        out[f"fixed_b{b}"] = run_reference(
            base, tok, fixed, steps=args.fixed_steps, per_device=b, accum=1, sampling="sequential"
        )
        print(json.dumps({k: v for k, v in out[f"fixed_b{b}"].items() if k != "losses"}), flush=True)
    if "loss" in args.parts:
        out["loss_run"] = run_reference(
            base, tok, feats, steps=args.loss_steps, per_device=1, accum=16, sampling="sequential"
        )
        print(json.dumps(out["loss_run"]["losses"]), flush=True)
    (work / "reference.json").write_text(json.dumps(out, indent=1), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["prepare", "reference", "ours", "combine"])
    parser.add_argument("--work", required=True, help="folder for the model, data and each part's JSON")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--tokenizer", default=".gpu/tok", help="SmolLM2's tokenizer folder (prepare)")
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps of the speed runs")
    parser.add_argument("--fixed-steps", type=int, default=5, help="steps of the fixed-length microbenchmark")
    parser.add_argument("--loss-steps", type=int, default=20, help="steps of the loss-equivalence run")
    parser.add_argument("--variants", nargs="*", help="(ours) only these lever variants")
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["oa", "fixed", "loss"],
        help="(reference) oa fixed loss; (ours) variants fixed loss; merged into the part's JSON",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="(combine) the result JSON")
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.part == "prepare":
        prepare(args)
    elif args.part == "reference":
        reference(args)
    elif args.part == "ours":
        from train_speed_ours import run_ours

        run_ours(args)
    else:
        from train_speed_report import combine

        combine(args)
    print(f"{args.part}: {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()

"""The reference trainer of ``train_speed.py``: plain ``transformers.Trainer`` + peft + bitsandbytes.

Written from the libraries' documented API with the QLoRA repository's ``finetune_guanaco_7b.sh``
settings: NF4 + double quantization, bf16, LoRA r=64 alpha 16 dropout 0.1 on all linear layers, paged
AdamW 32-bit, gradient checkpointing, length-grouped sampling (transformers 5.x:
``train_sampling_strategy="group_by_length"``), per-device batch 1 x accumulation 16, target length 512,
constant learning rate 2e-4 after one warmup step (5.x has no ``warmup_ratio``; 3% of 10 or 20 steps
rounds up to one), max grad norm 0.3. The OASST1 path of ``qlora.py``: no source, the whole text as
target, truncated to 512 tokens, loss on all of it.

The base model is loaded once; each run wraps it in a fresh LoRA (``get_peft_model``) and takes it
off again (``unload``), so runs in one process start from the same state.
"""

from __future__ import annotations

import gc
import time
from typing import Any

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def load_prepared_base(model_dir: str) -> tuple[Any, Any, float]:
    """The 4-bit base prepared for k-bit training with gradient checkpointing, its tokenizer, load seconds."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    tok = AutoTokenizer.from_pretrained(model_dir)
    bnb = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_use_double_quant=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, quantization_config=bnb, dtype=torch.bfloat16, device_map={"": 0}
    )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    return model, tok, time.perf_counter() - t0


def guanaco_features(tok: Any, texts: list[str]) -> list[dict[str, list[int]]]:
    """qlora.py's OASST1 tokenization: whole text as target, 511 tokens + end-of-sequence."""
    out = []
    for text in texts:
        ids = [*tok(text, add_special_tokens=False)["input_ids"][:511], tok.eos_token_id]
        out.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": list(ids)})
    return out


def fixed_features(vocab: int, seq_len: int, count: int, seed: int) -> list[dict[str, list[int]]]:
    """Random-token sequences of exactly ``seq_len`` tokens (the fixed-length microbenchmark)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, vocab, (count, seq_len), generator=gen).tolist()
    return [{"input_ids": r, "attention_mask": [1] * seq_len, "labels": list(r)} for r in rows]


def optimizer_state_bytes(optimizer: Any) -> int:
    """Bytes of the optimizer's state tensors (paged: they live outside torch's allocator)."""
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps it
    total = 0
    for state in inner.state.values():
        for value in state.values():
            if hasattr(value, "numel") and hasattr(value, "element_size"):
                total += int(value.numel() * value.element_size())
    return total


def run_reference(
    base: Any,
    tok: Any,
    features: list[dict[str, list[int]]],
    *,
    steps: int,
    per_device: int,
    accum: int,
    sampling: str,
    warmup_steps_excluded: int = 2,
) -> dict[str, Any]:
    """Train ``steps`` optimizer steps with ``transformers.Trainer``; real tokens/s after warm-up.

    Args:
        base: the prepared 4-bit base (a fresh LoRA is added and removed here).
        tok: its tokenizer.
        features: tokenized examples.
        steps: optimizer steps.
        per_device: per-device batch size.
        accum: gradient accumulation steps.
        sampling: ``group_by_length`` (the script) or ``sequential`` (the loss-equivalence run).
        warmup_steps_excluded: steps left out of the timing (as ``ref_hf_trainer.py``: 2).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    lora = LoraConfig(r=64, lora_alpha=16, lora_dropout=0.1, task_type="CAUSAL_LM", target_modules=TARGETS)
    torch.manual_seed(0)
    model = get_peft_model(base, lora)
    counter = {"tokens": 0}
    pad = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100)

    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        out = pad(batch)
        counter["tokens"] += int(out["attention_mask"].sum())
        return out

    marks: list[tuple[float, int]] = []

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            torch.cuda.synchronize()
            marks.append((time.perf_counter(), counter["tokens"]))

    args = TrainingArguments(
        output_dir="/tmp/train_speed_reference",
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accum,
        max_steps=steps,
        learning_rate=2e-4,
        lr_scheduler_type="constant",  # as the script: transformers' plain constant schedule ignores warmup
        warmup_steps=1,
        max_grad_norm=0.3,
        optim="paged_adamw_32bit",
        bf16=True,
        gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        train_sampling_strategy=sampling,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        seed=0,
        adam_beta2=0.999,
        weight_decay=0.0,
    )
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(model=model, args=args, train_dataset=features, data_collator=collate, callbacks=[Clock()])
    trainer.train()
    k = warmup_steps_excluded - 1
    (t_a, n_a), (t_b, n_b) = marks[k], marks[-1]
    result = {
        "steps": steps,
        "per_device": per_device,
        "accum": accum,
        "sampling": sampling,
        "timed_steps": len(marks) - 1 - k,
        "real_tokens_per_second": (n_b - n_a) / (t_b - t_a),
        "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
        "optimizer_state_gib": optimizer_state_bytes(trainer.optimizer) / 2**30,
        "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
        "mean_tokens_per_sequence": sum(len(f["input_ids"]) for f in features) / len(features),
    }
    del trainer
    model.unload()  # the base without LoRA layers, ready for the next run
    del model
    gc.collect()
    torch.cuda.empty_cache()
    return result

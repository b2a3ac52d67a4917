"""Merge a LoRA adapter into a 16-bit copy of its base, for deployment without peft or bitsandbytes.

The adapter was trained against the *quantized* base, so the base is loaded in 4-bit exactly as in
training and dequantized to 16-bit before merging (as the QLoRA authors recommend); merging into the
original 16-bit weights would add the adapter to weights it never saw.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from qlora_eval.errors import ConfigError, InputError
from qlora_eval.train.model import torch_dtype

log = logging.getLogger(__name__)


def adapter_quantization(adapter_dir: Path) -> dict[str, Any]:
    """The quantization settings the adapter was trained with (from its ``training.json``, if present)."""
    card = adapter_dir / "training.json"
    if not card.is_file():
        return {"bits": 4, "double_quant": True, "compute_dtype": "bfloat16"}
    settings = json.loads(card.read_text(encoding="utf-8"))["settings"]
    return {k: settings[k] for k in ("bits", "double_quant", "compute_dtype")}


def merge_adapter(base_path: str, adapter_dir: str, output_dir: str, *, dtype: str = "bfloat16") -> Path:
    """Dequantize the base, merge the adapter, and save a safetensors model folder with the tokenizer.

    Args:
        base_path: the base model folder (or hub id) the adapter was trained on.
        adapter_dir: the training output (``adapter_config.json`` and ``adapter_model.safetensors``).
        output_dir: where the merged model goes.
        dtype: ``bfloat16``, ``float16`` or ``float32`` for the merged weights.

    Raises:
        InputError: when the adapter folder is incomplete.
        ConfigError: for a bad dtype.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    adapter = Path(adapter_dir)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        if not (adapter / name).is_file():
            raise InputError(
                f"not an adapter folder: {name} is missing (pass a 'qlora-eval train' --output)", source=str(adapter)
            )
    if dtype not in ("bfloat16", "float16", "float32"):
        raise ConfigError(f"--dtype must be bfloat16, float16 or float32, got {dtype!r}")
    target_dtype = torch_dtype(dtype)
    quant = adapter_quantization(adapter)
    model: Any
    if quant["bits"] == 4:
        qconfig = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=quant["double_quant"],
            bnb_4bit_compute_dtype=torch_dtype(quant["compute_dtype"]),
        )
        device = "cuda:0" if torch.cuda.is_available() else "cpu"
        model = AutoModelForCausalLM.from_pretrained(
            base_path, quantization_config=qconfig, device_map={"": device}, dtype=target_dtype
        )
        model = model.dequantize()  # replaces every Linear4bit by a torch Linear holding the dequantized weight
    else:
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=target_dtype)
    model = model.to(device="cpu", dtype=target_dtype)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out), safe_serialization=True)
    tokenizer_source = adapter if (adapter / "tokenizer_config.json").is_file() else Path(base_path)
    AutoTokenizer.from_pretrained(str(tokenizer_source)).save_pretrained(str(out))
    log.info("merged %s into %s -> %s (%s)", adapter, base_path, out, dtype)
    return out

"""The frozen quantized base and its LoRA adapters.

Fixes a flaw of the reference script: there ``--lora_modules`` was parsed and then ignored, the
target modules always coming from a scan. Here an explicit ``target_modules`` list is used as given,
and every name must match a linear layer of the model.
"""

from __future__ import annotations

import logging
from typing import Any

from qlora_eval.errors import ConfigError
from qlora_eval.models.gguf import local_model_dir
from qlora_eval.models.spec import Backend, parse_model_spec
from qlora_eval.train.config import TrainConfig

log = logging.getLogger(__name__)


def resolve_base_model(spec_text: str) -> str:
    """A local folder (or hub id) for the base model spec.

    Raises:
        ConfigError: for a spec that is not a transformers model.
    """
    spec = parse_model_spec(spec_text)
    if spec.backend is not Backend.HF:
        raise ConfigError(f"--base-model must be a transformers model (hf: spec or alias), got {spec.backend.value}")
    if spec.adapter is not None:
        raise ConfigError("--base-model must not carry an adapter; merge it first with 'qlora-eval merge'")
    return local_model_dir(spec)


def torch_dtype(name: str) -> Any:
    """The torch dtype of a config dtype name."""
    import torch

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def quantization_config(config: TrainConfig) -> Any:
    """The QLoRA ``BitsAndBytesConfig``: NF4, double quantization, the configured compute dtype."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=config.double_quant,
        bnb_4bit_compute_dtype=torch_dtype(config.compute_dtype),
    )


def load_base(path: str, config: TrainConfig, device: Any) -> Any:
    """Load the base model onto ``device`` (4-bit NF4 when ``config.bits == 4``), all weights frozen.

    ``device`` is one device per process (``cpu`` or a CUDA index): in data-parallel runs every process
    holds its own quantized copy.
    """
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"device_map": {"": device}}
    if config.bits == 4:
        kwargs["quantization_config"] = quantization_config(config)
        kwargs["dtype"] = torch_dtype(config.compute_dtype)
    else:
        kwargs["dtype"] = torch_dtype("float32" if config.bits == 32 else config.compute_dtype)
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    model.config.use_cache = False  # the cache is useless in training and conflicts with checkpointing
    return model


def linear_module_names(model: Any) -> list[str]:
    """Leaf names of every linear layer (``torch.nn.Linear`` or bitsandbytes ``Linear4bit``/``Linear8bitLt``)
    except the output head, as the QLoRA paper adapts them all."""
    import torch

    classes: tuple[type, ...] = (torch.nn.Linear,)
    try:
        import bitsandbytes as bnb

        classes = (torch.nn.Linear, bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)
    except ImportError:  # a 16/32-bit LoRA run does not need bitsandbytes
        pass
    head = model.get_output_embeddings()
    names = set()
    for full_name, module in model.named_modules():
        if isinstance(module, classes) and module is not head:
            names.add(full_name.rsplit(".", 1)[-1])
    return sorted(names)


def resolve_target_modules(model: Any, requested: tuple[str, ...] | None) -> list[str]:
    """The LoRA target modules: the request as given (each checked), else every linear layer but the head.

    Raises:
        ConfigError: when a requested name matches no linear layer of the model.
    """
    available = linear_module_names(model)
    if requested is None:
        if not available:
            raise ConfigError("the model has no linear layers to adapt")
        return available
    missing = [name for name in requested if name not in available]
    if missing:
        raise ConfigError(
            f"--target-modules {missing} match no linear layer of the model; its linear layers: {available}"
        )
    return list(requested)


def add_lora(model: Any, config: TrainConfig) -> tuple[Any, list[str]]:
    """Prepare the base for k-bit training and wrap it with LoRA adapters.

    Returns:
        The ``PeftModel`` and the target module names used.
    """
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    targets = resolve_target_modules(model, config.target_modules)
    # Non-reentrant checkpointing works with DDP and with inputs that need no grad.
    ckpt_kwargs = {"use_reentrant": False}
    if config.bits == 4:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=config.gradient_checkpointing,
            gradient_checkpointing_kwargs=ckpt_kwargs,
        )
    else:
        for param in model.parameters():
            param.requires_grad_(False)
        if config.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=ckpt_kwargs)
            model.enable_input_require_grads()
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(config.seed)  # the LoRA A matrices are random: same seed, same start
    peft_model = get_peft_model(model, lora)
    return peft_model, targets


def quantized_layer_classes(model: Any) -> dict[str, int]:
    """Count of base linear layers per class (to show they really are ``bitsandbytes.nn.Linear4bit``)."""
    counts: dict[str, int] = {}
    for module in model.modules():
        base = getattr(module, "base_layer", None)
        if base is not None and not hasattr(base, "base_layer"):
            name = f"{type(base).__module__}.{type(base).__qualname__}"
            counts[name] = counts.get(name, 0) + 1
    return counts


def load_tokenizer(path: str) -> Any:
    """The base model's tokenizer."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)

"""Build a random-initialised model straight into 4-bit, one decoder layer at a time.

The full 16-bit model is never materialised: the model is created on the ``meta`` device,
then each decoder layer in turn gets real bf16 storage on the target device, is initialised,
has its ``nn.Linear`` modules replaced by bitsandbytes ``Linear4bit`` (NF4, double
quantization, bf16 compute) and its bf16 weights dropped. Peak memory while building is the
quantized model so far plus one bf16 layer. Embeddings, norms and the output head stay in bf16
as in QLoRA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qlora_eval.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel

INIT_STD = 0.02


@dataclass(frozen=True)
class BuiltModel:
    """A model made by :func:`build_random_model`.

    Attributes:
        model: the model (train mode off; no adapters).
        quantized: whether decoder Linears are NF4 ``Linear4bit``.
        n_params: the number of weights of the equivalent 16-bit model.
        weights_bytes: bytes held by parameters, buffers and quantization state.
    """

    model: PreTrainedModel
    quantized: bool
    n_params: int
    weights_bytes: int


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The decoder's layer list (``model.model.layers`` for Llama-like models)."""
    import torch

    get_decoder = getattr(model, "get_decoder", None)
    decoder = get_decoder() if callable(get_decoder) else None
    layers = getattr(decoder, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ConfigError(f"{type(model).__name__} has no decoder layer list ('model.layers'); use a Llama-like config")
    return layers


def _init_(module: torch.nn.Module, generator: torch.Generator, std: float) -> None:
    """Initialise a freshly materialised module the way Llama does (normal weights, unit norms)."""
    import torch

    with torch.no_grad():
        for name, param in module.named_parameters(recurse=False):
            if param.dim() >= 2:
                param.normal_(0.0, std, generator=generator)
            elif name == "bias":
                param.zero_()
            else:  # norm scales
                param.fill_(1.0)


def _materialise_(module: torch.nn.Module, device: torch.device, generator: torch.Generator, std: float) -> None:
    module.to_empty(device=device, recurse=True)
    for sub in module.modules():
        _init_(sub, generator, std)


def quantize_linears_(module: torch.nn.Module, device: torch.device, compute_dtype: torch.dtype) -> int:
    """Replace every ``nn.Linear`` under ``module`` by an NF4 double-quantized ``Linear4bit``.

    Returns:
        How many Linears were replaced.
    """
    import bitsandbytes as bnb
    import torch

    targets = [
        (name, child)
        for name, child in module.named_modules()
        if isinstance(child, torch.nn.Linear) and not isinstance(child, bnb.nn.Linear4bit)
    ]
    for name, linear in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        # Built on meta so no float32 copy of the weight is allocated just to be overwritten.
        new = bnb.nn.Linear4bit(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            compute_dtype=compute_dtype,
            compress_statistics=True,
            quant_type="nf4",
            device="meta",
        )
        weight = bnb.nn.Params4bit(
            linear.weight.data, requires_grad=False, quant_type="nf4", compress_statistics=True, blocksize=64
        )
        new.weight = weight.to(device)  # type: ignore[misc]  # moving a not-yet-quantized Params4bit quantizes it
        if linear.bias is not None:
            new.bias = torch.nn.Parameter(linear.bias.data.to(compute_dtype), requires_grad=False)
        setattr(parent, attr, new)
    return len(targets)


def weights_bytes(model: torch.nn.Module) -> int:
    """Bytes held by parameters, buffers and bitsandbytes quantization state."""
    total = 0
    seen: set[int] = set()
    for tensor in [*model.parameters(), *model.buffers()]:
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        total += tensor.numel() * tensor.element_size()
        state = getattr(tensor, "quant_state", None)
        if state is not None:
            total += state.absmax.numel() * state.absmax.element_size()
            if state.nested:
                total += state.state2.absmax.numel() * state.state2.absmax.element_size()
    return total


def count_params(model: torch.nn.Module) -> int:
    """Weights of the equivalent unquantized model (a packed 4-bit tensor holds two per byte)."""
    total = 0
    for param in model.parameters():
        state = getattr(param, "quant_state", None)
        total += int(state.shape.numel()) if state is not None else param.numel()
    return total


def build_random_model(
    config: PretrainedConfig, *, quantize: bool, device: str, seed: int = 0, std: float = INIT_STD
) -> BuiltModel:
    """Create a random model of ``config``'s shape layer by layer, optionally NF4-quantized.

    Args:
        config: a transformers causal-LM config (Llama-like: ``model.layers``).
        quantize: make decoder Linears NF4 + double quantization (bf16 compute); else keep bf16.
        device: ``cuda`` or ``cpu``.
        seed: seeds the per-layer generators, so the same config gives the same weights.
        std: standard deviation of the normal weight init.
    """
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16
    target = torch.device(device)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    layers = decoder_layers(model)
    layer_ids = {id(layer) for layer in layers}

    # Everything outside the decoder layers: embeddings, final norm, head, rotary tables.
    generator = torch.Generator(device=target).manual_seed(seed)
    for name, module in list(model.named_modules()):
        if id(module) in layer_ids or name.startswith(_layers_prefix(model, layers)):
            continue
        if name.endswith("rotary_emb"):
            # inv_freq is a computed buffer: rebuild the module on the device rather than leave meta data.
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name), attr, type(module)(config=config).to(target))
            continue
        on_meta = [t for t in [*module.parameters(recurse=False), *module.buffers(recurse=False)] if t.is_meta]
        if on_meta:
            module.to_empty(device=target, recurse=False)
            _init_(module, generator, std)
    if getattr(config, "tie_word_embeddings", False):
        output, inp = model.get_output_embeddings(), model.get_input_embeddings()
        if output is not None and inp is not None:
            output.weight = inp.weight

    for index, layer in enumerate(layers):
        layer_gen = torch.Generator(device=target).manual_seed(seed * 100_003 + index + 1)
        _materialise_(layer, target, layer_gen, std)
        if quantize:
            quantize_linears_(layer, target, dtype)
        if target.type == "cuda":
            torch.cuda.empty_cache()  # give the freed bf16 layer back before the next one

    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise RuntimeError(f"the builder left tensors on the meta device: {leftover[:5]}")
    if quantize:
        model.is_loaded_in_4bit = True  # tells peft to wrap Linear4bit with its 4-bit LoRA layer
    model.eval()
    return BuiltModel(model=model, quantized=quantize, n_params=count_params(model), weights_bytes=weights_bytes(model))


def _layers_prefix(model: torch.nn.Module, layers: torch.nn.ModuleList) -> str:
    for name, module in model.named_modules():
        if module is layers:
            return name + "."
    raise ConfigError("decoder layers not found among the model's modules")

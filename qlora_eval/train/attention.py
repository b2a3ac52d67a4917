"""Attention of packed passes: transformers' SDPA with a block-diagonal mask, or PyTorch's varlen flash.

With ``position_ids`` that restart per example and no attention mask, transformers detects the packed
format and builds a block-diagonal causal mask; SDPA then runs its masked kernel over the whole
``T x T`` square. PyTorch's ``torch.nn.attention.varlen.varlen_attn`` (FlashAttention on CUDA, no
extra package) takes the examples' offsets instead and computes only the blocks inside each example.
It is registered with transformers' attention registry under ``VARLEN`` and used when
``AttentionKind.AUTO`` finds it (CUDA and a PyTorch that has it) on packed passes.
"""

from __future__ import annotations

import inspect
from enum import Enum
from typing import Any

from qlora_eval.errors import ConfigError

VARLEN = "qlora_varlen"


class AttentionKind(Enum):
    """The ``--attention`` choice."""

    AUTO = "auto"  # varlen when packing on CUDA with a PyTorch that has it, else sdpa
    SDPA = "sdpa"
    VARLEN = "varlen"


def varlen_available() -> bool:
    """Whether PyTorch's varlen attention can run here (CUDA and ``torch.nn.attention.varlen``)."""
    import torch

    if not torch.cuda.is_available():
        return False
    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401
    except ImportError:
        return False
    return True


def resolve(kind: AttentionKind, packing: bool) -> AttentionKind:
    """The attention actually used.

    Raises:
        ConfigError: ``varlen`` asked for without packing or where it cannot run.
    """
    if kind is AttentionKind.VARLEN:
        if not packing:
            raise ConfigError("--attention varlen needs packed passes; drop --no-packing")
        if not varlen_available():
            raise ConfigError("--attention varlen needs CUDA and PyTorch >= 2.10 (torch.nn.attention.varlen)")
        return kind
    if kind is AttentionKind.AUTO:
        return AttentionKind.VARLEN if packing and varlen_available() else AttentionKind.SDPA
    return kind


def _no_mask(*args: Any, **kwargs: Any) -> None:
    # varlen attention needs no mask: the offsets say where each example starts
    return None


def _varlen_forward(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None, **kwargs: Any
) -> tuple[Any, None]:
    """transformers attention-interface function: ``[1, heads, T, D]`` in, ``[1, T, heads, D]`` out."""
    import torch
    from torch.nn.attention.varlen import varlen_attn

    offsets = kwargs.get("cu_seq_lens_q")
    if offsets is None or query.shape[0] != 1:
        raise ConfigError("varlen attention runs only on packed passes (one row with example offsets)")
    max_length = int(kwargs["max_length_q"])
    # rotary embedding in float32 promotes q/k under autocast; the flash kernel wants 16-bit
    dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else query.dtype
    q, k, v = (t[0].transpose(0, 1).to(dtype) for t in (query, key, value))  # [T, heads, D]
    options: dict[str, Any] = {"scale": scaling}
    params = inspect.signature(varlen_attn).parameters
    if "is_causal" in params:  # PyTorch 2.10/2.11
        options["is_causal"] = True
    else:  # later releases: causal is the window (-1, 0)
        options["window_size"] = (-1, 0)
    if k.shape[1] != q.shape[1]:  # grouped-query attention
        if "enable_gqa" in params:
            options["enable_gqa"] = True
        else:
            k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
            v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
    out = varlen_attn(q, k, v, offsets, offsets, max_length, max_length, **options)
    assert not isinstance(out, tuple)  # no auxiliary output was asked for
    return out.unsqueeze(0), None


def register_varlen() -> None:
    """Register the varlen function and its (empty) mask with transformers (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(VARLEN, _varlen_forward)
    AttentionMaskInterface.register(VARLEN, _no_mask)


def apply(model: Any, kind: AttentionKind) -> None:
    """Switch a loaded model to the resolved attention (``SDPA`` leaves it as loaded)."""
    if kind is AttentionKind.VARLEN:
        register_varlen()
        model.set_attn_implementation(VARLEN)


def for_unpacked_calls(model: Any) -> None:
    """Put a model trained with varlen attention back on SDPA (evaluation and generation pass masks)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if base.config._attn_implementation == VARLEN:
        base.set_attn_implementation("sdpa")

"""Quantization error and storage cost of bitsandbytes data types on real (or normal) weights.

For each data type we quantize a weight matrix, dequantize it back and measure

* ``bits_per_param``: the bits actually stored (packed codes + block scales + second-level
  scales) divided by the number of weights; the shared code tables (16 or 256 floats, the
  same for every tensor) are not counted;
* ``rel_error``: ``||W - deq(q(W))||_F / ||W||_F`` over all matrices together.

The closed forms with block size 64 and (for double quantization) second-level block 256:
``4 + 32/64 = 4.5`` bits for nf4/fp4 and ``4 + 8/64 + 32/(64*256) ≈ 4.127`` with ``+dq``,
so double quantization saves about 0.373 bits per parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from qlora_eval.errors import InputError

if TYPE_CHECKING:
    import torch

BLOCKSIZE = 64
NESTED_BLOCKSIZE = 256  # bitsandbytes' fixed block size for the quantized absmax (double quantization)


class QuantType(Enum):
    """A storage format under test."""

    NF4 = "nf4"
    NF4_DQ = "nf4+dq"
    FP4 = "fp4"
    FP4_DQ = "fp4+dq"
    INT8 = "int8"  # row-wise absmax int8, what load_in_8bit stores (LLM.int8 without outliers)
    INT8_BLOCKWISE = "int8-blockwise"  # 8-bit dynamic code with block size 64, like the 4-bit types


ALL_TYPES: tuple[QuantType, ...] = tuple(QuantType)


def closed_form_bits(quant_type: QuantType, columns: int | None = None) -> float:
    """Bits per parameter from the format's definition (what ``bits_per_param`` must match).

    Args:
        quant_type: the format.
        columns: row length, needed only for row-wise ``int8`` (one float32 scale per row).
    """
    if quant_type in (QuantType.NF4, QuantType.FP4):
        return 4 + 32 / BLOCKSIZE
    if quant_type in (QuantType.NF4_DQ, QuantType.FP4_DQ):
        return 4 + 8 / BLOCKSIZE + 32 / (BLOCKSIZE * NESTED_BLOCKSIZE)
    if quant_type is QuantType.INT8_BLOCKWISE:
        return 8 + 32 / BLOCKSIZE
    if columns is None:
        raise ValueError("row-wise int8 needs the row length")
    return 8 + 32 / columns


@dataclass(frozen=True)
class TypeFigures:
    """Aggregated figures of one type over a set of matrices."""

    bits_per_param: float
    rel_error: float

    def to_dict(self) -> dict[str, float]:
        return {"bits_per_param": self.bits_per_param, "rel_error": self.rel_error}


@dataclass(frozen=True)
class QuantReport:
    """Figures per type for one set of weights.

    Attributes:
        source: what the weights were (a model spec or ``normal(0,1) RxC seed S``).
        n_matrices: how many weight matrices were measured.
        n_params: how many weights in total.
        types: type name -> figures.
    """

    source: str
    n_matrices: int
    n_params: int
    types: dict[str, TypeFigures]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "n_matrices": self.n_matrices,
            "n_params": self.n_params,
            "types": {name: fig.to_dict() for name, fig in self.types.items()},
        }


def _tensor_bits(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size() * 8


def quantize_roundtrip(weight: torch.Tensor, quant_type: QuantType) -> tuple[torch.Tensor, int]:
    """Quantize and dequantize one matrix with bitsandbytes.

    Args:
        weight: a 2-D float tensor (any device bitsandbytes supports).
        quant_type: the format.

    Returns:
        The dequantized matrix (float32, same shape) and the number of bits stored for it.
    """
    import bitsandbytes.functional as bnbf
    import torch

    if weight.dim() != 2:
        raise InputError(f"expected a 2-D weight matrix, got shape {tuple(weight.shape)}")
    w = weight.detach().float().contiguous()
    if quant_type in (QuantType.NF4, QuantType.NF4_DQ, QuantType.FP4, QuantType.FP4_DQ):
        nested = quant_type in (QuantType.NF4_DQ, QuantType.FP4_DQ)
        kind = "nf4" if quant_type in (QuantType.NF4, QuantType.NF4_DQ) else "fp4"
        packed, state = bnbf.quantize_4bit(w, blocksize=BLOCKSIZE, compress_statistics=nested, quant_type=kind)
        bits = _tensor_bits(packed) + _tensor_bits(state.absmax)
        if state.nested:
            if state.state2.blocksize != NESTED_BLOCKSIZE:
                raise RuntimeError(f"bitsandbytes used second-level block {state.state2.blocksize}, not 256")
            bits += _tensor_bits(state.state2.absmax) + _tensor_bits(torch.as_tensor(state.offset, dtype=torch.float32))
        restored = bnbf.dequantize_4bit(packed, state).float()
        return restored.reshape(w.shape), bits
    if quant_type is QuantType.INT8_BLOCKWISE:
        codes, state = bnbf.quantize_blockwise(w, blocksize=BLOCKSIZE)
        bits = _tensor_bits(codes) + _tensor_bits(state.absmax)
        return bnbf.dequantize_blockwise(codes, state).float().reshape(w.shape), bits
    codes_i8, row_scale, _outliers = bnbf.int8_vectorwise_quant(w)
    bits = _tensor_bits(codes_i8) + _tensor_bits(row_scale)
    return codes_i8.float() * (row_scale.float()[:, None] / 127.0), bits


def measure(weights: Iterable[torch.Tensor], *, source: str, types: tuple[QuantType, ...] = ALL_TYPES) -> QuantReport:
    """Quantize every matrix with every type and aggregate the figures.

    Matrices are processed one at a time, so only one dequantized copy is alive at once.
    """
    stored_bits = dict.fromkeys(types, 0)
    squared_error = dict.fromkeys(types, 0.0)
    squared_norm = 0.0
    n_params = 0
    n_matrices = 0
    for weight in weights:
        w = weight.detach().float()
        squared_norm += float(w.pow(2).sum())
        n_params += w.numel()
        n_matrices += 1
        for quant_type in types:
            restored, bits = quantize_roundtrip(w, quant_type)
            stored_bits[quant_type] += bits
            squared_error[quant_type] += float((restored - w).pow(2).sum())
    if n_matrices == 0 or squared_norm == 0.0:
        raise InputError(f"no non-zero weight matrices to measure in {source}")
    figures = {
        t.value: TypeFigures(
            bits_per_param=stored_bits[t] / n_params, rel_error=math.sqrt(squared_error[t] / squared_norm)
        )
        for t in types
    }
    return QuantReport(source=source, n_matrices=n_matrices, n_params=n_params, types=figures)


def linear_weights(model: torch.nn.Module) -> Iterator[torch.Tensor]:
    """The weight matrices QLoRA would quantize: every ``nn.Linear`` except the output head."""
    import torch

    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module is not head:
            yield module.weight


def normal_reference(
    rows: int = 1024, columns: int = 4096, *, seed: int = 0, types: tuple[QuantType, ...] = ALL_TYPES
) -> QuantReport:
    """The figures on N(0, 1) weights, the distribution NF4 is built for."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(rows, columns, generator=generator)
    return measure([weight], source=f"normal(0,1) {rows}x{columns} seed {seed}", types=types)

"""The training loss: the causal-LM cross-entropy summed over target tokens, without the full logits.

transformers' causal-LM head computes logits for every position of the pass (``[B, T, vocab]``;
with SmolLM2's 49,152-token vocabulary that is 0.8 GB of float32 per 4,096 tokens, plus its bf16
copy and its gradient) and only then drops the ignored labels. Here the decoder's hidden states are
taken first, only the positions that carry a target are kept, and the head + cross-entropy run over
them in chunks under activation checkpointing, so at most one chunk's logits exist at a time, in the
forward and in the backward pass. ``LossKind.PLAIN`` is the same computation in one piece (the check
for the chunked one); ``LossKind.LIGER`` uses Liger-Kernel's fused linear cross-entropy (extra ``fast``).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from qlora_eval.errors import MissingDependencyError
from qlora_eval.train.collator import IGNORE_INDEX


class LossKind(Enum):
    """How the head and cross-entropy are computed (the value is the ``--loss`` name)."""

    CHUNKED = "chunked"  # head + CE per chunk of target tokens, recomputed in the backward pass
    PLAIN = "plain"  # head + CE over all target tokens at once
    LIGER = "liger"  # liger_kernel's LigerFusedLinearCrossEntropyLoss (pip install 'qlora-eval[fast]')


def _chunk_loss(hidden: Any, weight: Any, targets: Any) -> Any:
    import torch.nn.functional as F

    # [n, H] @ [H, V] -> [n, V]; CE in float32 as transformers' loss does
    logits = F.linear(hidden, weight).float()
    return F.cross_entropy(logits, targets, reduction="sum")


def cross_entropy_sum(hidden: Any, weight: Any, targets: Any, kind: LossKind, chunk_tokens: int) -> Any:
    """Sum over ``n`` target tokens of ``-log softmax(hidden @ weight.T)[target]``.

    Args:
        hidden: ``[n, H]`` final hidden states of the positions that have a target.
        weight: ``[V, H]`` output head weight (frozen).
        targets: ``[n]`` target token ids (no ignored entries).
        kind: the computation (all give the same value up to float rounding).
        chunk_tokens: rows per chunk for ``LossKind.CHUNKED``.

    Returns:
        A float32 scalar tensor.
    """
    import torch
    from torch.utils.checkpoint import checkpoint

    if kind is LossKind.PLAIN:
        return _chunk_loss(hidden, weight, targets)
    if kind is LossKind.LIGER:
        return _liger_loss(hidden, weight, targets)
    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.shape[0], chunk_tokens):
        part = checkpoint(
            _chunk_loss,
            hidden[start : start + chunk_tokens],
            weight,
            targets[start : start + chunk_tokens],
            use_reentrant=False,
        )
        total = total + part
    return total


def _liger_loss(hidden: Any, weight: Any, targets: Any) -> Any:
    import torch

    try:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss
    except ImportError as exc:
        raise MissingDependencyError("liger-kernel", "pip install 'qlora-eval[fast]'", "--loss liger") from exc
    # Liger's kernel runs in its inputs' dtype: give it what autocast would (bf16 on CUDA)
    dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else hidden.dtype
    loss = LigerFusedLinearCrossEntropyLoss(reduction="sum")(weight.to(dtype), hidden.to(dtype), targets)
    return loss.float()


def shifted_targets(hidden: Any, labels: Any) -> tuple[Any, Any]:
    """Pair each position's hidden state with the next token's label; keep only real targets.

    Args:
        hidden: ``[B, T, H]`` decoder output.
        labels: ``[B, T]`` labels (``IGNORE_INDEX`` where no loss is taken).

    Returns:
        ``[n, H]`` hidden states and ``[n]`` targets of the ``n`` positions whose next label is a target.
    """
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    return hidden[:, :-1][keep], targets[keep]


def make_loss_module(model: Any, kind: LossKind, chunk_tokens: int) -> Any:
    """Wrap a (peft) causal LM so that calling it returns the summed token loss of a pass.

    The wrapper is what data parallelism wraps: its ``forward`` runs the decoder (through the LoRA
    layers peft injected in place) and then the head + cross-entropy of ``cross_entropy_sum``.
    """
    import torch

    class CausalLMLossModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            base = model.get_base_model() if hasattr(model, "get_base_model") else model
            self._decoder = base.get_decoder()
            self._head = base.get_output_embeddings()

        def forward(
            self,
            input_ids: Any,
            labels: Any,
            attention_mask: Any = None,
            position_ids: Any = None,
            cu_seq_lens: Any = None,
            max_length: int | None = None,
        ) -> Any:
            extra: dict[str, Any] = {}
            if cu_seq_lens is not None:  # read by the varlen attention path, ignored by sdpa/eager
                extra = {
                    "cu_seq_lens_q": cu_seq_lens,
                    "cu_seq_lens_k": cu_seq_lens,
                    "max_length_q": max_length,
                    "max_length_k": max_length,
                }
            out = self._decoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=False,
                **extra,
            )
            hidden, targets = shifted_targets(out.last_hidden_state, labels)
            return cross_entropy_sum(hidden, self._head.weight, targets, kind, chunk_tokens)

    return CausalLMLossModule()

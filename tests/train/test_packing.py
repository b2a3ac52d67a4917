"""Packed passes equal padded ones; the chunked cross-entropy equals the plain one and transformers' loss.

Tiny random Llama on the CPU (float32, LoRA with no dropout): the loss *sum* and every LoRA gradient of
a pass must agree between the padded batch (attention mask) and the packed row (position ids that
restart per example), and between the loss kinds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qlora_eval.train.collator import IGNORE_INDEX, TokenizedExample, collate
from qlora_eval.train.config import DatasetFormat, TrainConfig, make_config
from qlora_eval.train.loss import LossKind, cross_entropy_sum, make_loss_module
from qlora_eval.train.packing import collate_packed, token_budget_passes

torch = pytest.importorskip("torch")


def _config(tiny: Path, **overrides: Any) -> TrainConfig:
    return make_config(
        base_model=str(tiny),
        dataset="unused.jsonl",
        dataset_format=DatasetFormat.INPUT_OUTPUT,
        output_dir="unused",
        compute_dtype="float32",
        bits=32,
        lora_r=4,
        lora_dropout=0.0,
        **overrides,
    )


def _examples(vocab: int) -> list[TokenizedExample]:
    gen = torch.Generator().manual_seed(3)
    out = []
    for n, prompt in [(9, 3), (17, 5), (5, 2), (12, 0)]:
        ids = torch.randint(3, vocab, (n,), generator=gen).tolist()
        labels = [IGNORE_INDEX] * prompt + ids[prompt:]
        out.append(TokenizedExample(tuple(ids), tuple(labels)))
    return out


def _model(tiny: Path) -> Any:
    from qlora_eval.train.model import add_lora, load_base

    config = _config(tiny)
    model, _ = add_lora(load_base(str(tiny), config, "cpu"), config)
    # LoRA B starts at zero; make it non-zero so the adapters take part in the forward pass
    torch.manual_seed(0)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.05)
    return model


def _loss_and_grads(module: Any, batch: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    module.zero_grad(set_to_none=True)
    loss = module(**batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.requires_grad}
    return float(loss), grads


def test_token_budget_passes_keep_order_and_budget() -> None:
    lengths = [5, 3, 4, 10, 2, 2]
    passes = token_budget_passes([0, 1, 2, 3, 4, 5], lengths, max_tokens=8)
    assert passes == [[0, 1], [2], [3], [4, 5]]  # 10 > budget: a pass of its own, never cut
    assert [i for p in passes for i in p] == [0, 1, 2, 3, 4, 5]


def test_collate_packed_resets_positions_and_masks_first_labels() -> None:
    a = TokenizedExample((1, 2, 3), (1, 2, 3))
    b = TokenizedExample((4, 5), (IGNORE_INDEX, 5))
    batch = collate_packed([a, b])
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4, 5]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    # no token learns to predict the start of the next example
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 2, 3, IGNORE_INDEX, 5]]
    assert batch["cu_seq_lens"].tolist() == [0, 3, 5]
    assert batch["max_length"] == 3


def test_packed_pass_equals_padded_pass_loss_and_gradients(tiny_llama_dir: Path) -> None:
    model = _model(tiny_llama_dir)
    examples = _examples(model.config.vocab_size)
    module = make_loss_module(model, LossKind.PLAIN, chunk_tokens=1024)
    padded_loss, padded_grads = _loss_and_grads(module, collate(examples, pad_id=0))
    packed = collate_packed(examples)
    packed.pop("cu_seq_lens")  # the sdpa/eager path reads the position ids
    packed.pop("max_length")
    packed_loss, packed_grads = _loss_and_grads(module, packed)
    expected_targets = sum(e.target_tokens for e in examples)
    assert padded_loss / expected_targets > 1.0  # a real loss, not zero
    assert packed_loss == pytest.approx(padded_loss, rel=1e-5)
    assert padded_grads.keys() == packed_grads.keys() and len(padded_grads) > 0
    for name, grad in padded_grads.items():
        torch.testing.assert_close(packed_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_packing_without_position_reset_would_differ(tiny_llama_dir: Path) -> None:
    """The check above can fail: attention across examples changes the loss."""
    model = _model(tiny_llama_dir)
    examples = _examples(model.config.vocab_size)
    module = make_loss_module(model, LossKind.PLAIN, chunk_tokens=1024)
    packed = collate_packed(examples)
    right = float(module(input_ids=packed["input_ids"], labels=packed["labels"], position_ids=packed["position_ids"]))
    leaky = float(module(input_ids=packed["input_ids"], labels=packed["labels"]))  # one long causal sequence
    assert abs(right - leaky) > 1e-3 * abs(right)


def test_loss_module_equals_transformers_loss(tiny_llama_dir: Path) -> None:
    model = _model(tiny_llama_dir)
    examples = _examples(model.config.vocab_size)
    batch = collate(examples, pad_id=0)
    with torch.no_grad():
        ours = make_loss_module(model, LossKind.CHUNKED, chunk_tokens=7)(**batch)
        theirs = model(**batch).loss  # mean over the batch's targets
    assert float(ours) == pytest.approx(float(theirs) * sum(e.target_tokens for e in examples), rel=1e-5)


def test_chunked_cross_entropy_equals_plain_value_and_gradients() -> None:
    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(50, 16, generator=gen, requires_grad=True)
    weight = torch.randn(97, 16, generator=gen)
    targets = torch.randint(0, 97, (50,), generator=gen)
    plain = cross_entropy_sum(hidden, weight, targets, LossKind.PLAIN, chunk_tokens=1024)
    (grad_plain,) = torch.autograd.grad(plain, hidden)
    chunked = cross_entropy_sum(hidden, weight, targets, LossKind.CHUNKED, chunk_tokens=8)  # 7 chunks, last short
    (grad_chunked,) = torch.autograd.grad(chunked, hidden)
    expected = torch.nn.functional.cross_entropy(hidden @ weight.T, targets, reduction="sum")
    torch.testing.assert_close(plain, expected)
    torch.testing.assert_close(chunked, plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_chunked, grad_plain, rtol=1e-5, atol=1e-6)


def test_liger_loss_without_the_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from qlora_eval.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "liger_kernel.transformers", None)  # import fails as when absent
    with pytest.raises(MissingDependencyError, match=r"qlora-eval\[fast\]"):
        cross_entropy_sum(torch.zeros(2, 4), torch.zeros(3, 4), torch.zeros(2, dtype=torch.long), LossKind.LIGER, 8)


def test_attention_auto_is_sdpa_on_cpu_and_varlen_is_refused() -> None:
    from qlora_eval.errors import ConfigError
    from qlora_eval.train.attention import AttentionKind, resolve

    if torch.cuda.is_available():
        pytest.skip("CPU behaviour")
    assert resolve(AttentionKind.AUTO, packing=True) is AttentionKind.SDPA
    with pytest.raises(ConfigError, match="CUDA"):
        resolve(AttentionKind.VARLEN, packing=True)
    with pytest.raises(ConfigError, match="--no-packing"):
        resolve(AttentionKind.VARLEN, packing=False)


@pytest.mark.gpu
def test_liger_fused_cross_entropy_equals_plain_on_cuda() -> None:
    pytest.importorskip("liger_kernel")
    gen = torch.Generator().manual_seed(2)
    hidden = torch.randn(300, 64, generator=gen).cuda().requires_grad_(True)
    weight = torch.randn(1000, 64, generator=gen).cuda()
    targets = torch.randint(0, 1000, (300,), generator=gen).cuda()
    plain = cross_entropy_sum(hidden, weight, targets, LossKind.PLAIN, chunk_tokens=1024)
    (grad_plain,) = torch.autograd.grad(plain, hidden)
    fused = cross_entropy_sum(hidden, weight, targets, LossKind.LIGER, chunk_tokens=1024)
    (grad_fused,) = torch.autograd.grad(fused, hidden)
    torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(grad_fused, grad_plain, rtol=1e-3, atol=1e-4)

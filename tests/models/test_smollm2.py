"""SmolLM2-135M-Instruct answers a factual question in full precision and in NF4 (slow: real model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlora_eval.models import load_chat_model
from qlora_eval.models.hf import HFChatModel
from qlora_eval.types import GenerationSettings, Message, Role

pytestmark = pytest.mark.slow

QUESTION = [[Message(Role.USER, "What is the capital of France?")]]


@pytest.mark.parametrize("options", ["", "?bits=4"])
def test_smollm2_knows_paris(smollm2_dir: Path, options: str) -> None:
    model = load_chat_model("smollm2-135m" + options, device="cpu")
    assert isinstance(model, HFChatModel)
    answer = model.generate(QUESTION, GenerationSettings(do_sample=False, max_new_tokens=16))[0]
    assert "Paris" in answer.text
    assert answer.completion_tokens <= 16
    if options:
        assert model.loaded.model.config.quantization_config.bnb_4bit_quant_type == "nf4"

"""The transformers backend on a tiny random Llama: batching, left padding, stops, seeds, logprobs, loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qlora_eval.errors import ConfigError
from qlora_eval.models import load_chat_model
from qlora_eval.models.chat import format_chat
from qlora_eval.models.hf import HFChatModel, load_hf_model
from qlora_eval.models.spec import ChatFormat, parse_model_spec
from qlora_eval.types import GenerationSettings, Message, Role

PROMPTS = [
    [Message(Role.USER, "What is the capital of France?")],
    [Message(Role.USER, "hi")],
    [
        Message(Role.USER, "Write a haiku about the sea."),
        Message(Role.ASSISTANT, "Waves fold into foam."),
        Message(Role.USER, "Explain how photosynthesis works in plants, in three sentences."),
    ],
]
GREEDY = GenerationSettings(do_sample=False, max_new_tokens=10)


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir: Path) -> HFChatModel:
    return HFChatModel.from_spec(parse_model_spec(f"hf:{tiny_llama_dir}"), device="cpu")


def test_batched_equals_one_at_a_time_greedy(tiny: HFChatModel) -> None:
    batched = tiny.generate(PROMPTS, GREEDY)
    single = [tiny.generate([p], GREEDY)[0] for p in PROMPTS]
    assert [c.text for c in batched] == [c.text for c in single]
    assert [c.completion_tokens for c in batched] == [c.completion_tokens for c in single]
    assert [c.prompt_tokens for c in batched] == [c.prompt_tokens for c in single]
    # Different prompt lengths: left padding really happened.
    assert len({c.prompt_tokens for c in batched}) == 3


def test_answer_is_the_continuation_only(tiny: HFChatModel) -> None:
    import torch

    tokenizer, model = tiny.loaded.tokenizer, tiny.loaded.model
    text = format_chat(tokenizer, PROMPTS[0], ChatFormat.TEMPLATE)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=10, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    expected = tokenizer.decode(out[0, ids.input_ids.shape[1] :], skip_special_tokens=True).strip()
    got = tiny.generate([PROMPTS[0]], GREEDY)[0]
    assert got.text == expected
    assert got.prompt_tokens == ids.input_ids.shape[1]
    assert "capital of France" not in got.text
    assert 1 <= got.completion_tokens <= 10


def test_stop_string_cuts_the_answer(tiny: HFChatModel) -> None:
    settings = GenerationSettings(do_sample=False, max_new_tokens=24)
    full = tiny.generate([PROMPTS[2]], settings)[0]
    assert len(full.text) > 6
    stop = full.text[4:6]
    cut = tiny.generate([PROMPTS[2]], settings, stop=[stop])[0]
    assert cut.text == full.text[: full.text.index(stop)].strip()
    assert stop not in cut.text
    assert cut.completion_tokens < full.completion_tokens


def test_seeded_sampling_is_reproducible_and_batch_independent(tiny: HFChatModel) -> None:
    s1 = GenerationSettings(max_new_tokens=12, seed=1)
    first = [c.text for c in tiny.generate(PROMPTS, s1)]
    again = [c.text for c in tiny.generate(PROMPTS, s1)]
    alone = [tiny.generate([p], s1)[0].text for p in PROMPTS]
    reordered = [c.text for c in tiny.generate(PROMPTS[::-1], s1)][::-1]
    assert first == again == alone == reordered
    other = [c.text for c in tiny.generate(PROMPTS, GenerationSettings(max_new_tokens=12, seed=2))]
    assert other != first
    greedy = [c.text for c in tiny.generate(PROMPTS, GenerationSettings(do_sample=False, max_new_tokens=12))]
    assert greedy != first


def test_next_token_logprobs_batched_match_unpadded(tiny: HFChatModel) -> None:
    import torch

    tokenizer, model = tiny.loaded.tokenizer, tiny.loaded.model
    prompts = ["The capital of France is", "Answer: A B C D. The answer is", "1 2"]
    got = tiny.next_token_logprobs(prompts, ["1", "2", "3"], batch_size=2)
    assert got.shape == (3, 3)
    ids = [tokenizer.encode(c, add_special_tokens=False)[0] for c in "123"]
    for row, text in enumerate(prompts):
        enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            logits = model(**enc).logits[0, -1].float()
        expected = torch.log_softmax(logits, -1)[ids].numpy()
        np.testing.assert_allclose(got[row], expected, atol=1e-4)
    assert np.all(got < 0)


def test_next_token_logprobs_rejects_multi_token_candidates(tiny: HFChatModel) -> None:
    with pytest.raises(ConfigError, match="exactly one token"):
        tiny.next_token_logprobs(["x"], ["photosynthesis"])


def test_format_chat_guanaco_and_template(tiny: HFChatModel) -> None:
    tokenizer = tiny.loaded.tokenizer
    assert format_chat(tokenizer, PROMPTS[2], ChatFormat.GUANACO) == (
        "### Human: Write a haiku about the sea. ### Assistant: Waves fold into foam. "
        "### Human: Explain how photosynthesis works in plants, in three sentences. ### Assistant:"
    )
    templated = format_chat(tokenizer, PROMPTS[0], ChatFormat.TEMPLATE)
    assert templated == "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"


def test_template_format_without_template_says_what_to_do(tiny: HFChatModel) -> None:
    class NoTemplate:
        chat_template = None

    with pytest.raises(ConfigError, match="chat=guanaco"):
        format_chat(NoTemplate(), PROMPTS[0], ChatFormat.TEMPLATE)


def test_guanaco_format_stops_at_next_human_turn(tiny_llama_dir: Path) -> None:
    model = load_chat_model(f"hf:{tiny_llama_dir}?chat=guanaco", device="cpu")
    assert isinstance(model, HFChatModel)
    out = model.generate(PROMPTS[:2], GREEDY)
    assert all("### Human:" not in c.text for c in out)
    assert model.format_prompt(PROMPTS[0]).endswith("### Assistant:")


def test_guanaco_format_stop_really_cuts(tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14: the random tiny model never writes "### Human:", so the test above passes even if the format's
    stop is ignored. Plant it: the format's stop string becomes a piece of what the model does write greedily."""
    import qlora_eval.models.hf as hf

    model = load_chat_model(f"hf:{tiny_llama_dir}?chat=guanaco", device="cpu")
    settings = GenerationSettings(do_sample=False, max_new_tokens=24)
    monkeypatch.setattr(hf, "format_stop_strings", lambda chat_format: ())
    full = model.generate([PROMPTS[2]], settings)[0]
    assert len(full.text) > 8
    planted = full.text[5:8]
    monkeypatch.setattr(hf, "format_stop_strings", lambda chat_format: (planted,))
    cut = model.generate([PROMPTS[2]], settings)[0]  # no stop passed by the caller: the format's own must act
    assert cut.text == full.text[: full.text.index(planted)].strip()
    assert planted not in cut.text and cut.completion_tokens < full.completion_tokens


def test_precisions(tiny_llama_dir: Path) -> None:
    import torch

    bf16 = load_hf_model(parse_model_spec(f"hf:{tiny_llama_dir}?bits=16"), device="cpu")
    assert bf16.model.dtype == torch.bfloat16
    fp16 = load_hf_model(parse_model_spec(f"hf:{tiny_llama_dir}?bits=16&dtype=float16"), device="cpu")
    assert fp16.model.dtype == torch.float16
    full = load_hf_model(parse_model_spec(f"hf:{tiny_llama_dir}"), device="cpu")
    assert full.model.dtype == torch.float32
    assert full.tokenizer.padding_side == "left"


def test_nf4_loads_with_double_quantization(tiny_llama_dir: Path) -> None:
    import bitsandbytes as bnb
    import torch

    loaded = load_hf_model(parse_model_spec(f"hf:{tiny_llama_dir}?bits=4"), device="cpu")
    quant = loaded.model.config.quantization_config
    assert quant.bnb_4bit_quant_type == "nf4"
    assert quant.bnb_4bit_use_double_quant is True
    assert quant.bnb_4bit_compute_dtype == torch.bfloat16
    layers = [m for m in loaded.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 14  # 2 layers x (4 attention + 3 MLP projections); lm_head stays unquantized
    out = HFChatModel(loaded).generate(PROMPTS[:1], GREEDY)
    assert out[0].completion_tokens >= 1


def test_adapter_is_loaded_unmerged_on_the_4bit_base(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(tmp_path / "adapter")

    plain = load_chat_model(f"hf:{tiny_llama_dir}?bits=4", device="cpu")
    adapted = load_chat_model(f"hf:{tiny_llama_dir}?bits=4&adapter={tmp_path / 'adapter'}", device="cpu")
    assert isinstance(adapted, HFChatModel)
    assert isinstance(adapted.loaded.model, PeftModel)
    assert any("lora_A" in name for name, _ in adapted.loaded.model.named_modules())  # unmerged
    prompts = ["The capital of France is", "hi"]
    assert isinstance(plain, HFChatModel)
    a = adapted.next_token_logprobs(prompts, ["1", "2"])
    b = plain.next_token_logprobs(prompts, ["1", "2"])
    assert not np.allclose(a, b, atol=1e-3)


def test_missing_adapter_is_a_config_error(tiny_llama_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="adapter"):
        load_hf_model(parse_model_spec(f"hf:{tiny_llama_dir}?adapter={tmp_path / 'nope'}"), device="cpu")


def test_int8_loads_and_generates(tiny_llama_dir: Path) -> None:
    import bitsandbytes as bnb

    model = load_chat_model(f"hf:{tiny_llama_dir}?bits=8", device="cpu")
    assert isinstance(model, HFChatModel)
    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in model.loaded.model.modules())
    assert model.generate(PROMPTS[:1], GREEDY)[0].completion_tokens >= 1

"""The vllm: spec's tensor_parallel_size / data_parallel_size: parsed, passed to vllm.LLM, kept with answers.

A stand-in ``vllm`` module (installed in ``sys.modules`` for the test only) records the engine arguments;
the real engine is exercised by tests/models/test_vllm.py in the vLLM environment.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

from qlora_eval.errors import ConfigError
from qlora_eval.generate.runner import generate_answers
from qlora_eval.models.spec import parse_model_spec
from qlora_eval.prompts import load_prompt_set
from qlora_eval.store import Store
from qlora_eval.types import GenerationSettings


class _Out:
    def __init__(self, text: str) -> None:
        self.prompt_token_ids = [1, 2, 3]
        self.outputs = [types.SimpleNamespace(text=text, token_ids=[4, 5])]


class _FakeLLM:
    created: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        _FakeLLM.created.append(kwargs)

    def chat(self, conversations: list[Any], params: Any, **kw: Any) -> list[_Out]:
        return [_Out(f"reply {i}") for i, _ in enumerate(conversations)]


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> type[_FakeLLM]:
    module = types.ModuleType("vllm")
    module.LLM = _FakeLLM  # type: ignore[attr-defined]
    module.SamplingParams = lambda **kw: kw  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    _FakeLLM.created = []
    return _FakeLLM


def test_parallel_options_parse_and_are_checked() -> None:
    spec = parse_model_spec("vllm:/models/m?tensor_parallel_size=2&data_parallel_size=4")
    assert spec.options["tensor_parallel_size"] == "2" and spec.options["data_parallel_size"] == "4"
    for bad in ("0", "two", "-1", "1.5"):
        with pytest.raises(ConfigError, match="tensor_parallel_size must be a whole number >= 1"):
            parse_model_spec(f"vllm:/models/m?tensor_parallel_size={bad}")
    with pytest.raises(ConfigError, match="not known for backend hf"):
        parse_model_spec("hf:/models/m?data_parallel_size=2")


def test_settings_reach_vllm_and_are_recorded_with_every_answer(fake_vllm: type[_FakeLLM], tmp_path: Path) -> None:
    text = "vllm:/models/m?tensor_parallel_size=2&data_parallel_size=4&name=m-tp2-dp4"
    prompts = load_prompt_set("demo").limit(3)
    with Store(tmp_path / "v.db") as store:
        report = generate_answers(
            store, [parse_model_spec(text)], prompts, GenerationSettings(max_new_tokens=8), progress=False
        )
        stored = store.answers(models=["m-tp2-dp4"])
    assert report.generated == 3
    assert fake_vllm.created[0]["tensor_parallel_size"] == 2 and fake_vllm.created[0]["data_parallel_size"] == 4
    assert len(stored) == 3
    for answer in stored:
        assert parse_model_spec(answer.model_spec).options["tensor_parallel_size"] == "2"
        assert parse_model_spec(answer.model_spec).options["data_parallel_size"] == "4"


def test_without_the_options_vllm_keeps_its_defaults(fake_vllm: type[_FakeLLM]) -> None:
    from qlora_eval.models.vllm_backend import VLLMChatModel

    VLLMChatModel(parse_model_spec("vllm:/models/m"))
    assert "tensor_parallel_size" not in fake_vllm.created[0] and "data_parallel_size" not in fake_vllm.created[0]


def test_openai_spec_concurrency_sets_requests_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    from qlora_eval.models.openai_backend import OpenAIChatModel

    monkeypatch.setenv("OPENAI_API_KEY", "local")
    spec = parse_model_spec("openai:m?base_url=http://127.0.0.1:9/v1&concurrency=64")
    assert OpenAIChatModel(spec).concurrency == 64
    assert OpenAIChatModel(parse_model_spec("openai:m?base_url=http://127.0.0.1:9/v1")).concurrency == 8
    with pytest.raises(ConfigError, match="concurrency must be a whole number >= 1"):
        parse_model_spec("openai:m?concurrency=0")

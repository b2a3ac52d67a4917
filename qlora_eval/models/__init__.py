"""Model specs and backends (hf, openai, vllm). Importing this package imports no heavy dependency."""

from qlora_eval.models.base import ChatModel, Completion
from qlora_eval.models.factory import load_chat_model
from qlora_eval.models.spec import Backend, ChatFormat, ModelSpec, parse_model_spec

__all__ = ["Backend", "ChatFormat", "ChatModel", "Completion", "ModelSpec", "load_chat_model", "parse_model_spec"]

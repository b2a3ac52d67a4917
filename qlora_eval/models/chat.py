"""Turning a conversation into a model's input text (the tokenizer's template or the Guanaco format)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qlora_eval.errors import ConfigError
from qlora_eval.models.spec import ChatFormat
from qlora_eval.types import Message, Role

#: The stop string of the Guanaco format: a model trained on it starts the next human turn with this.
GUANACO_STOP = "### Human:"


def format_guanaco(turns: Sequence[Message]) -> str:
    """The Guanaco / OASST format the QLoRA paper trains and evaluates on.

    ``### Human: Q1 ### Assistant: A1 ### Human: Q2 ### Assistant:`` (single spaces, as in the QLoRA
    ``oa_questions.jsonl``). A system message, if any, comes first on its own line.
    """
    parts: list[str] = []
    for message in turns:
        if message.role is Role.SYSTEM:
            parts.append(message.content.strip() + "\n")
        elif message.role is Role.USER:
            parts.append(f"### Human: {message.content} ")
        else:
            parts.append(f"### Assistant: {message.content} ")
    return "".join(parts) + "### Assistant:"


def format_chat(tokenizer: Any, turns: Sequence[Message], chat_format: ChatFormat) -> str:
    """The prompt text for a conversation, ending where the assistant's answer starts.

    Args:
        tokenizer: a transformers tokenizer (only used for ``ChatFormat.TEMPLATE``).
        turns: the conversation; the last message is the user's.
        chat_format: the tokenizer's chat template or the Guanaco format.

    Raises:
        ConfigError: when the template format is asked for but the tokenizer has no chat template.
    """
    if chat_format is ChatFormat.GUANACO:
        return format_guanaco(turns)
    if getattr(tokenizer, "chat_template", None) is None:
        raise ConfigError(
            f"the tokenizer of {getattr(tokenizer, 'name_or_path', 'this model')!r} has no chat template; "
            "add '?chat=guanaco' to the model spec to use the '### Human: ... ### Assistant:' format"
        )
    text = tokenizer.apply_chat_template([m.to_dict() for m in turns], tokenize=False, add_generation_prompt=True)
    return str(text)


def format_stop_strings(chat_format: ChatFormat) -> tuple[str, ...]:
    """Stop strings a chat format implies (the template format stops at the tokenizer's EOS only)."""
    return (GUANACO_STOP,) if chat_format is ChatFormat.GUANACO else ()

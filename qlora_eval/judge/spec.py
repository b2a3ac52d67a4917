"""Judge specs: ``KIND:TARGET`` for a registered kind (``openai:MODEL[?base_url=URL]``, ``local:MODEL_SPEC``).

Parsing a judge spec loads nothing, so ``--dry-run`` can plan and price a run without a model or a key. The
kinds and their grammars live in :mod:`qlora_eval.judge.registry`; this module keeps the public names.
"""

from __future__ import annotations

from qlora_eval.judge.kind import JudgeKind, JudgeSpec
from qlora_eval.judge.registry import judge_grammar, parse_judge_spec

DEFAULT_JUDGE = "openai:gpt-4"

__all__ = ["DEFAULT_JUDGE", "JudgeKind", "JudgeSpec", "judge_grammar", "parse_judge_spec"]

"""Read the verdict from a judge's reply: the last non-empty line must hold only 1, 2 or 3.

Lenient about decoration a model commonly adds around the digit (markdown emphasis, a trailing full stop,
``Verdict: 2``, ``[[1]]``), strict about everything else: a line with other words or two digits is
INVALID, never guessed.
"""

from __future__ import annotations

import re

from qlora_eval.types import Verdict

_DIGIT_TO_VERDICT = {"1": Verdict.A, "2": Verdict.B, "3": Verdict.TIE}
# Optional label, then the digit wrapped in any mix of markdown/brackets/quotes, then optional punctuation.
_LINE = re.compile(
    r"^(?:(?:final\s+)?(?:verdict|decision|answer|score)\s*[:=-]?\s*)?"
    r"[\s*_`'\"\[\]()<>#]*([123])[\s*_`'\"\[\]()<>]*[.!]?[\s*_`]*$",
    re.IGNORECASE,
)


def parse_verdict(text: str) -> Verdict:
    """The verdict written on the last non-empty line of ``text``.

    Args:
        text: the judge's full reply.

    Returns:
        ``Verdict.A`` for 1, ``Verdict.B`` for 2, ``Verdict.TIE`` for 3, ``Verdict.INVALID`` otherwise.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return Verdict.INVALID
    match = _LINE.match(lines[-1])
    return _DIGIT_TO_VERDICT[match.group(1)] if match else Verdict.INVALID

"""Reading judge replies the way the QLoRA paper's ``eval/eval_gpt_review.py`` does.

* three-class: ``int(review.strip().split("\\n")[-1].strip())``; 1, 2, 3 are verdicts, anything else
  (another number, words, an exception) is the paper's ``-1``: an INVALID verdict, counted, never a tie;
* relative: the first line, commas turned into spaces, split on single spaces, must give exactly two
  numbers (``S1 S2``); else the paper's ``[-1, -1]``: an INVALID call (``None`` here).
"""

from __future__ import annotations

from qlora_eval.types import Verdict

_THREE_CLASS = {1: Verdict.A, 2: Verdict.B, 3: Verdict.TIE}


def parse_paper_three_class(text: str) -> Verdict:
    """The paper's ``parse_three_class_score``: the last line as an integer (1 A, 2 B, 3 tie), else INVALID."""
    try:
        score = int(text.strip().split("\n")[-1].strip())
    except ValueError:
        return Verdict.INVALID
    return _THREE_CLASS.get(score, Verdict.INVALID)


def parse_score_pair(text: str) -> tuple[float, float] | None:
    """The paper's ``parse_score``: two numbers on the first line (``"8 7"``, ``"8, 7"``), else None.

    Pairs with a negative score (the paper's own ``-1`` marker) count as unparsable too.
    """
    parts = text.split("\n")[0].replace(",", " ").split(" ")
    if len(parts) != 2:
        return None
    try:
        first, second = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    if first < 0 or second < 0 or first != first or second != second:  # -1 marker, NaN
        return None
    return first, second

"""Style covariates for style-controlled Bradley-Terry (as Chatbot Arena's style control does it).

For each battle and each style feature ``f`` (answer length, markdown headers, list items, bold spans),
the covariate is the normalised difference between the answer shown first and the one shown second,
``(f_a - f_b) / (f_a + f_b)`` (0 when both are 0), a number in ``[-1, 1]`` that does not grow with the
answers' size. Its coefficient in :mod:`.bt_features` is the rating advantage, in Elo points, of an answer
that has *all* of the feature over one that has none (e.g. +1 for the length difference means the first
answer is much longer). Length is counted in characters (the same measure as the length-preference
statistic; token counts need the judge's tokenizer, which the rating engine never loads).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from qlora_eval.errors import ConfigError

_HEADER = re.compile(r"^\s{0,3}#{1,6}\s+\S", re.MULTILINE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")


class StyleControl(Enum):
    """Which style covariates ``--control`` adds."""

    LENGTH = "length"
    MARKDOWN = "markdown"


#: Covariate names per control (markdown adds three covariates).
STYLE_COLUMNS: dict[StyleControl, tuple[str, ...]] = {
    StyleControl.LENGTH: ("length",),
    StyleControl.MARKDOWN: ("markdown_headers", "markdown_list_items", "markdown_bold"),
}


def parse_controls(text: str | Sequence[str] | None) -> tuple[StyleControl, ...]:
    """``"length,markdown"`` (or a list of names) -> the controls, in canonical order; None or "" -> ().

    Raises:
        ConfigError: an unknown name (the message lists the known ones and names ``--control``).
    """
    if text is None:
        return ()
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    known = {c.value: c for c in StyleControl}
    unknown = [p for p in parts if p not in known]
    if unknown:
        raise ConfigError(
            f"--control {','.join(parts)}: unknown style control(s) {', '.join(unknown)}; "
            f"use a comma-separated subset of {', '.join(known)} (e.g. --control length,markdown)"
        )
    return tuple(c for c in StyleControl if c.value in parts)


@dataclass(frozen=True)
class StyleFeatures:
    """Raw style counts of one answer."""

    length: int
    headers: int
    list_items: int
    bold: int

    @classmethod
    def of(cls, text: str) -> StyleFeatures:
        """Count the features of an answer text."""
        return cls(
            length=len(text),
            headers=len(_HEADER.findall(text)),
            list_items=len(_LIST_ITEM.findall(text)),
            bold=len(_BOLD.findall(text)),
        )

    def values(self, control: StyleControl) -> tuple[int, ...]:
        """The counts behind the covariates of ``control`` (aligned with :data:`STYLE_COLUMNS`)."""
        if control is StyleControl.LENGTH:
            return (self.length,)
        return (self.headers, self.list_items, self.bold)


def normalised_difference(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``(first - second) / (first + second)``, 0 where both are 0 (shapes broadcast; float64)."""
    f = np.asarray(first, dtype=np.float64)
    s = np.asarray(second, dtype=np.float64)
    total = f + s
    out: np.ndarray = np.divide(f - s, total, out=np.zeros(np.broadcast(f, s).shape), where=total > 0)
    return out


def style_covariates(
    texts_a: Sequence[str], texts_b: Sequence[str], controls: Sequence[StyleControl]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Style covariates of battles from the texts of the answer shown first and second.

    Args:
        texts_a: shape ``(n,)``, the first-shown answer of each battle.
        texts_b: shape ``(n,)``, the second-shown answer.
        controls: which covariates (see :class:`StyleControl`).

    Returns:
        ``(covariates, names)``: shape ``(n, c)`` float64 normalised differences, and the ``c`` names.
    """
    if len(texts_a) != len(texts_b):
        raise ValueError(f"texts_a and texts_b differ in length: {len(texts_a)} and {len(texts_b)}")
    cache: dict[str, StyleFeatures] = {}

    def features(text: str) -> StyleFeatures:
        found = cache.get(text)
        if found is None:
            found = cache[text] = StyleFeatures.of(text)
        return found

    columns: list[np.ndarray] = []
    names: list[str] = []
    fa = [features(t) for t in texts_a]
    fb = [features(t) for t in texts_b]
    for control in controls:
        va = np.array([f.values(control) for f in fa], dtype=np.float64).reshape(len(fa), -1)
        vb = np.array([f.values(control) for f in fb], dtype=np.float64).reshape(len(fb), -1)
        columns.append(normalised_difference(va, vb))
        names.extend(STYLE_COLUMNS[control])
    if not columns:
        return np.zeros((len(texts_a), 0)), ()
    return np.concatenate(columns, axis=1), tuple(names)

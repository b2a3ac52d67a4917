"""Fleiss' kappa against the textbook example, and the plurality helper."""

from __future__ import annotations

import numpy as np
import pytest

from qlora_eval.human.agreement import fleiss_kappa, plurality

# Fleiss (1971) as worked in Wikipedia's "Fleiss' kappa" article: 10 subjects, 14 raters, 5 categories.
WIKIPEDIA_EXAMPLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def test_fleiss_kappa_matches_the_worked_example() -> None:
    # P_bar = 0.378, P_e = 0.213, kappa = 0.210 in the worked example.
    assert fleiss_kappa(WIKIPEDIA_EXAMPLE) == pytest.approx(0.20993, abs=5e-5)


def test_fleiss_kappa_extremes_and_errors() -> None:
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)
    # Perfectly split subjects agree less than chance.
    assert fleiss_kappa(np.array([[1, 1], [1, 1]])) == pytest.approx(-1.0)
    assert fleiss_kappa(np.array([[3, 0], [2, 0]])) is None  # one category only: undefined
    # Variable rater counts: rows with 2 and 3 ratings mix (generalised P_i per row).
    mixed = fleiss_kappa(np.array([[2, 0], [0, 3], [1, 1]]))
    assert mixed is not None and 0 < mixed < 1
    with pytest.raises(ValueError, match="at least two"):
        fleiss_kappa(np.array([[1, 0], [2, 0]]))
    with pytest.raises(ValueError, match="shape"):
        fleiss_kappa(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="non-negative"):
        fleiss_kappa(np.array([[3, -1], [1, 1]]))


def test_plurality() -> None:
    assert plurality(["a", "b", "a"]) == "a"
    assert plurality(["a", "b"]) is None
    assert plurality([]) is None
    assert plurality(["x"]) == "x"

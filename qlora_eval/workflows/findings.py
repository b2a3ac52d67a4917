"""Findings a tournament report states in words, computed from the ranking (never written by hand).

The one finding so far answers the question a QLoRA user brings: does 4-bit cost quality? For every pair of
contestants that differ only in weight precision (same model, options and sampling; e.g. ``bits=4`` vs full
precision), it takes the Bradley-Terry rating difference and its 95% bootstrap interval over prompts (the
difference computed inside each bootstrap round, so the two ratings' correlation is kept) and says whether the
interval contains 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qlora_eval.models.spec import ModelSpec
from qlora_eval.types import GenerationSettings

if TYPE_CHECKING:
    from qlora_eval.rating import RankingResult

_PRECISION = {4: "4-bit NF4", 8: "8-bit", 16: "16-bit", 32: "full precision"}


@dataclass(frozen=True)
class PrecisionFinding:
    """The rating difference between a lower- and a higher-precision copy of one contestant.

    Attributes:
        low, high: display names of the lower- and higher-precision contestants.
        low_bits, high_bits: their weight precision.
        method: the ranking the figures come from (``bt``).
        difference: rating of ``low`` minus rating of ``high``.
        ci_low, ci_high: 2.5 and 97.5 percentiles of that difference over the bootstrap rounds.
    """

    low: str
    high: str
    low_bits: int
    high_bits: int
    method: str
    difference: float
    ci_low: float
    ci_high: float

    @property
    def within(self) -> bool:
        """Whether 0 lies inside the interval: the tournament cannot tell the two precisions apart."""
        return self.ci_low <= 0.0 <= self.ci_high

    @property
    def sentence(self) -> str:
        """The finding in one sentence."""
        low, high = _PRECISION.get(self.low_bits, f"{self.low_bits}-bit"), _PRECISION.get(self.high_bits, "")
        direction = "lower" if self.difference < 0 else "higher"
        head = (
            f"{low} ({self.low}) is rated {abs(self.difference):.0f} points {direction} than {high} ({self.high}); "
            f"the 95% bootstrap interval of the difference, {self.ci_low:+.0f} to {self.ci_high:+.0f}, "
        )
        if self.within:
            return head + "contains 0, so this tournament finds no quality difference between the two precisions."
        return head + f"excludes 0, so this tournament's judge rates {low} measurably {direction} than {high}."

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "precision",
            "low": self.low,
            "high": self.high,
            "low_bits": self.low_bits,
            "high_bits": self.high_bits,
            "method": self.method,
            "difference": self.difference,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "within": self.within,
            "sentence": self.sentence,
        }


def precision_findings(
    ranking: RankingResult, contestants: Sequence[tuple[ModelSpec, GenerationSettings]]
) -> list[PrecisionFinding]:
    """One finding per pair of contestants that differ only in ``bits`` (none when there is no such pair).

    Args:
        ranking: a ranking with bootstrap samples (Bradley-Terry: the samples are bootstrap rounds over prompts).
        contestants: each contestant's parsed spec and sampling.
    """
    import numpy as np

    findings = []
    for i, (spec_a, settings_a) in enumerate(contestants):
        for spec_b, settings_b in contestants[i + 1 :]:
            if spec_a.bits == spec_b.bits or _identity(spec_a, settings_a) != _identity(spec_b, settings_b):
                continue
            low, high = (spec_a, spec_b) if spec_a.bits < spec_b.bits else (spec_b, spec_a)
            if low.name not in ranking.models or high.name not in ranking.models:
                continue
            column = {m: k for k, m in enumerate(ranking.models)}
            diffs = ranking.samples[:, column[low.name]] - ranking.samples[:, column[high.name]]  # (rounds,)
            ci_low, ci_high = np.percentile(diffs, [2.5, 97.5])
            findings.append(
                PrecisionFinding(
                    low=low.name,
                    high=high.name,
                    low_bits=low.bits,
                    high_bits=high.bits,
                    method=ranking.method.value,
                    difference=float(ranking.rating_of(low.name).rating - ranking.rating_of(high.name).rating),
                    ci_low=float(ci_low),
                    ci_high=float(ci_high),
                )
            )
    return findings


def _identity(spec: ModelSpec, settings: GenerationSettings) -> tuple[Any, ...]:
    """Everything about a contestant except its display name and precision."""
    options = tuple(sorted((k, v) for k, v in spec.options.items() if k not in {"name", "bits", "dtype"}))
    return (spec.backend, spec.target, options, tuple(sorted(settings.to_dict().items())))

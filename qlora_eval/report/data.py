"""What a report is made of: the ranking, run metadata, and extra sections other engines contribute."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qlora_eval.report.htmlkit import html_table

if TYPE_CHECKING:
    from qlora_eval.rating import RankingResult


@dataclass(frozen=True)
class ReportSection:
    """One extra section of a report: a title and a block of HTML.

    ``html`` is inserted as is, so it must already be safe: build it with the helpers of
    :mod:`qlora_eval.report.htmlkit` (``esc``, ``html_table``, ``figure_img``) or the constructors below, which
    escape every piece of user text (model names, prompts, answers, judge output are all user input).

    Attributes:
        title: the heading (plain text; escaped by the template).
        html: the body (trusted HTML).
        intro: an optional plain-text sentence shown under the heading (escaped).
        anchor: the id used in the table of contents; derived from the title when None.
    """

    title: str
    html: str
    intro: str | None = None
    anchor: str | None = None

    @property
    def slug(self) -> str:
        """The anchor id: the given one, else the title in lower case with dashes."""
        base = self.anchor if self.anchor is not None else self.title
        return "s-" + (re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-") or "section")

    @classmethod
    def table(
        cls,
        title: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        intro: str | None = None,
        numeric: Sequence[int] = (),
        anchor: str | None = None,
    ) -> ReportSection:
        """A section holding one table; every cell is escaped (numbers are formatted by the caller or str())."""
        return cls(title, html_table(columns, rows, numeric=numeric), intro=intro, anchor=anchor)


@dataclass(frozen=True)
class InputFile:
    """An input of the run: path, sha256 and how many records it gave."""

    path: str
    sha256: str
    records: int | None = None


@dataclass(frozen=True)
class RunMetadata:
    """How the report's numbers were made, so a reader can reproduce them.

    Attributes:
        created_at: ISO-8601 UTC time of the run.
        seed: the seed of orderings / bootstrap rounds.
        command: the command line that produced the ranking.
        judges: judge ids whose verdicts were ranked.
        prompt_sets: prompt sets of those verdicts.
        inputs: input files (or the store file) with their sha256.
        data_sha256: hash of exactly the verdicts ranked.
        versions: package -> version (qlora-eval, python, numpy, ...).
        extra: any other key -> value worth showing (tournament name, judge template hash ...).
    """

    created_at: str
    seed: int | None = None
    command: str | None = None
    judges: tuple[str, ...] = ()
    prompt_sets: tuple[str, ...] = ()
    inputs: tuple[InputFile, ...] = ()
    data_sha256: str | None = None
    versions: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_rank_document(cls, document: Mapping[str, Any]) -> RunMetadata:
        """Metadata from the JSON document ``qlora-eval rank --json`` writes."""
        versions = {
            "qlora-eval": str(document.get("qlora_eval_version", "")),
            "python": str(document.get("python_version", "")),
            "numpy": str(document.get("numpy_version", "")),
        }
        return cls(
            created_at=str(document["created_at"]),
            seed=document.get("seed"),
            command=document.get("command"),
            judges=tuple(document.get("judges", ())),
            prompt_sets=tuple(document.get("prompt_sets", ())),
            inputs=tuple(InputFile(i["path"], i["sha256"], i.get("records")) for i in document.get("inputs", ())),
            data_sha256=document.get("data_sha256"),
            versions={k: v for k, v in versions.items() if v},
        )


@dataclass(frozen=True)
class ReportData:
    """Everything :func:`qlora_eval.report.build_report` renders.

    Attributes:
        title: page title (plain text).
        ranking: the ranking (``qlora_eval.rating.rank_battles``).
        metadata: how it was made.
        sections: extra sections, shown after the built-in ones and before the run metadata, in order.
        subtitle: an optional plain-text line under the title.
    """

    title: str
    ranking: RankingResult
    metadata: RunMetadata
    sections: tuple[ReportSection, ...] = ()
    subtitle: str | None = None

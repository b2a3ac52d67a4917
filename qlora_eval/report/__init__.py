"""HTML reports (L4): one self-contained page per ranking, with room for sections from other engines.

Usage::

    from qlora_eval.report import ReportData, ReportSection, RunMetadata, build_report
    from qlora_eval.report.htmlkit import esc, figure_img, html_table

    extra = ReportSection.table("MMLU", ["model", "accuracy"], [["guanaco-7b", "0.391"]], numeric=(1,))
    html = build_report(ReportData("My tournament", ranking, RunMetadata(created_at=now), sections=(extra,)))

A section is a title plus trusted HTML: build the HTML with ``htmlkit`` (``esc`` every piece of user text,
``html_table`` escapes cells, ``figure_img`` embeds a matplotlib figure as SVG). Extra sections appear after
the built-in ones, in the order given, and get a table-of-contents entry.

A benchmark without a ranking (MMLU) uses ``build_benchmark_report(title, sections, metadata)``: the same page
with only the given sections and the run metadata.

Importing this package imports matplotlib, so only import it when a report is wanted.
"""

from __future__ import annotations

from qlora_eval.report.build import build_benchmark_report, build_report, write_report
from qlora_eval.report.data import InputFile, ReportData, ReportSection, RunMetadata

__all__ = [
    "InputFile",
    "ReportData",
    "ReportSection",
    "RunMetadata",
    "build_benchmark_report",
    "build_report",
    "write_report",
]

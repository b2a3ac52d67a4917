"""MMLU reports: result documents (``mmlu --json`` files or this run's) -> one HTML benchmark report."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qlora_eval import __version__
from qlora_eval.errors import InputError
from qlora_eval.paths import read_text
from qlora_eval.types import utc_now

if TYPE_CHECKING:
    from qlora_eval.report.mmlu import MmluRun


def load_mmlu_runs(paths: Sequence[Path]) -> list[MmluRun]:
    """Read ``qlora-eval mmlu --json`` files.

    Raises:
        InputError: an unreadable file, not JSON, or a bad document (named with the file).
    """
    from qlora_eval.report.mmlu import MmluRun

    runs = []
    for path in paths:
        text = read_text(path, expected="a qlora-eval mmlu --json file")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"not JSON: {err.msg}", source=str(path), line=err.lineno) from err
        runs.append(MmluRun.from_document(document, source=str(path)))
    return runs


def mmlu_report_html(
    runs: Sequence[MmluRun],
    *,
    inputs: Sequence[tuple[Path, int]],
    extra: Mapping[str, str],
    title: str | None,
    command: str,
) -> str:
    """The MMLU report of ``runs``: tables by supercategory and subject, headline cards, run metadata."""
    from qlora_eval.interchange.base import sha256_file
    from qlora_eval.report import RunMetadata, build_benchmark_report
    from qlora_eval.report.data import InputFile
    from qlora_eval.report.mmlu import mmlu_sections

    metadata = RunMetadata(
        created_at=utc_now(),
        command=command,
        inputs=tuple(InputFile(str(path), sha256_file(path), records) for path, records in inputs),
        versions={"qlora-eval": __version__, "python": platform.python_version()},
        extra=dict(extra),
    )
    models = list(dict.fromkeys(r.model for r in runs))
    settings = sorted({r.setting for r in runs})
    subtitle = f"{len(runs)} run{'s' if len(runs) != 1 else ''} · {' / '.join(settings)}"
    if len(runs) == 1:
        one = runs[0]
        head = {"qlora": "macro", "harness": "micro"}[one.mode]
        cards = [
            (f"micro accuracy{' (headline)' if head == 'micro' else ''}", f"{100 * one.accuracy:.1f}%"),
            (f"macro accuracy{' (headline)' if head == 'macro' else ''}", f"{100 * one.macro_accuracy:.1f}%"),
            ("questions", f"{one.n:,}"),
            ("subjects", f"{len(one.subjects):,}"),
        ]
    else:
        cards = [(f"{r.model} ({r.setting})", f"{100 * r.headline:.1f}%") for r in runs[:6]]
    title = title or f"MMLU: {', '.join(models)}"
    return build_benchmark_report(title, mmlu_sections(runs), metadata, subtitle=subtitle, cards=cards)

"""Writers of input files in each format, for tests (the fixture files are generated, never checked in)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_qlora(
    folder: Path,
    model_a: str,
    model_b: str,
    scores: Sequence[Any],
    *,
    reviewer: str = "gpt-4",
    threeclass: bool = True,
    first_id: int = 1,
) -> Path:
    """A QLoRA review file: one line per score, question ids counting from ``first_id``."""
    suffix = "-threeclass" if threeclass else ""
    path = folder / f"{model_a}-vs-{model_b}-{reviewer}-reviewer{suffix}.jsonl"
    lines = [
        json.dumps({"review_id": f"r{i}", "question_id": first_id + i, "text": f"review {i}", "score": s})
        for i, s in enumerate(scores)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path

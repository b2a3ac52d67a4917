"""The relative-score workflow (``rank --method relative``): stored relative judgments -> % of a reference model.

Relative judgments name the answers they scored by id, so they are read from a store into which the
answers were imported (``qlora-eval import ... --format qlora-generations``) before the reviews
(``--format qlora-relative``); files alone cannot be scored.

Usage::

    from qlora_eval.workflows.relative import RelativeRequest, relative_rank

    document = relative_rank(RelativeRequest(db=Path("paper.db"), reference="answer-gpt35", seed=0))
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qlora_eval import __version__
from qlora_eval.errors import ConfigError, InputError, nearest_names
from qlora_eval.types import utc_now


@dataclass(frozen=True)
class RelativeRequest:
    """What to score and how.

    Attributes:
        db: the store holding the relative judgments.
        reference: the model every other model is a percentage of (e.g. ``answer-gpt35``).
        prompt_set: only this prompt set (None: all).
        judges: only judgments of these judges (None: all).
        models: only calls between these models (None: all; the reference is always kept).
        rounds: prompt bootstrap rounds (None: the default, 1000).
        seed: seed of the bootstrap.
        command: the command line, recorded in the document.
    """

    db: Path
    reference: str
    prompt_set: str | None = None
    judges: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    rounds: int | None = None
    seed: int = 0
    command: str = "qlora-eval rank --method relative"


def relative_rank(request: RelativeRequest) -> dict[str, Any]:
    """Score every model against the reference; returns what ``rank --json`` writes for ``--method relative``.

    ``{"method": "relative", "reference", "rounds", "models": [{"model", "percent", "ci_low", "ci_high",
    "prompts", "calls", "invalid"}], "unscored", "seed", "judges", "prompt_sets", "inputs", "command", ...}``

    Raises:
        InputError: no store, no relative judgments, a judge/model/reference no judgment names.
    """
    import numpy as np

    from qlora_eval.interchange.base import sha256_file
    from qlora_eval.rating.relative import DEFAULT_RELATIVE_ROUNDS, relative_table
    from qlora_eval.store import Store

    rounds = request.rounds if request.rounds is not None else DEFAULT_RELATIVE_ROUNDS
    if rounds < 2:
        raise ConfigError(f"--rounds must be at least 2, got {rounds}")
    if not request.db.is_file():
        raise InputError(
            "no store here; pass --db PATH of a store holding relative judgments (qlora-eval import creates one)",
            source=str(request.db),
        )
    with Store(request.db) as store:
        judgments = store.relative_judgments(prompt_set=request.prompt_set)
    if not judgments:
        raise InputError(
            "the store holds no relative judgments; import them with --format qlora-relative "
            "(after the answers they score, --format qlora-generations)",
            source=str(request.db),
        )
    if request.judges is not None:
        known = {j.judge for j in judgments}
        unknown = sorted(set(request.judges) - known)
        if unknown:
            raise InputError(
                f"no relative judgments by judge(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
                + nearest_names(unknown, known)
            )
        judgments = [j for j in judgments if j.judge in request.judges]
    if request.models is not None:
        known = {j.model_a for j in judgments} | {j.model_b for j in judgments}
        unknown = sorted(set(request.models) - known)
        if unknown:
            raise InputError(
                f"no relative judgments of model(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
                + nearest_names(unknown, known)
            )
        wanted = set(request.models) | {request.reference}
        judgments = [j for j in judgments if j.model_a in wanted and j.model_b in wanted]
    table = relative_table(judgments, request.reference, rounds, np.random.default_rng(request.seed))
    return {
        **table.to_json_dict(),
        "seed": request.seed,
        "judges": sorted({j.judge for j in judgments}),
        "prompt_sets": sorted({j.prompt_set for j in judgments}),
        "inputs": [{"path": str(request.db), "sha256": sha256_file(request.db), "records": len(judgments)}],
        "command": request.command,
        "qlora_eval_version": __version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "created_at": utc_now(),
    }


def format_relative(document: dict[str, Any]) -> str:
    """The relative table as plain text."""
    reference = document["reference"]
    lines = [
        f"score as % of {reference}'s over the same calls; 95% interval over {document['rounds']:,} "
        f"prompt bootstrap rounds, seed {document['seed']}",
        "",
    ]
    rows = [("model", "% of reference", "95% interval", "prompts", "calls", "invalid")]
    for m in document["models"]:
        rows.append(
            (
                m["model"],
                f"{m['percent']:.1f}%",
                f"[{m['ci_low']:.1f}, {m['ci_high']:.1f}]",
                str(m["prompts"]),
                str(m["calls"]),
                str(m["invalid"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    for model, invalid in document["unscored"].items():
        lines.append(f"{model}: all {invalid} calls against {reference} were unparsable (INVALID); not scored")
    return "\n".join(lines)

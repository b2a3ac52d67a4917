"""What ``qlora-eval tournament --json`` writes, typed and versioned (same rules as :mod:`.document`).

``{"tournament", "config", "judge", "prompt_set", "prompts", "elo": RANKING + "seed", "bt": RANKING + "seed" +
"note", "diagnostics": {"judge", ...}, "generation", "judging", "qlora_eval_version", "python_version",
"created_at", "schema_version"}``
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qlora_eval.errors import InputError
from qlora_eval.workflows.document import SCHEMA_VERSION, Diagnostics, Ranking, read_json, schema_version_of


@dataclass(frozen=True)
class TournamentDocument:
    """What ``qlora-eval tournament --json`` writes: the Elo and BT rankings of one tournament and how it ran.

    Attributes:
        tournament: its name.
        config: the tournament config as recorded in the store's run.
        judge: the judge id.
        prompt_set: the prompt set.
        prompts: number of prompts.
        elo: the Elo ranking.
        bt: the Bradley-Terry ranking.
        bt_note: why BT was fitted with a prior (None when the plain fit converged).
        diagnostics: judge diagnostics (with ``judge``).
        generation: ``generated`` and ``reused`` answer counts.
        judging: the judge run's summary.
        qlora_eval_version: package version.
        python_version: Python version.
        created_at: ISO-8601 UTC time.
        schema_version: layout version (0: written before versions existed).
        findings: computed statements about the result (``qlora_eval.workflows.findings``), each with its
            ``sentence`` and the figures behind it (e.g. whether NF4 vs full precision lies within the interval).
    """

    tournament: str
    config: Mapping[str, Any]
    judge: str
    prompt_set: str
    prompts: int
    elo: Ranking
    bt: Ranking
    bt_note: str | None
    diagnostics: Diagnostics
    generation: Mapping[str, int]
    judging: Mapping[str, Any]
    qlora_eval_version: str
    python_version: str
    created_at: str
    schema_version: int = SCHEMA_VERSION
    findings: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON object; keys in the order of the pre-versioned files, ``schema_version`` last."""
        return {
            "tournament": self.tournament,
            "config": dict(self.config),
            "judge": self.judge,
            "prompt_set": self.prompt_set,
            "prompts": self.prompts,
            "elo": self.elo.to_json(),
            "bt": {**self.bt.to_json(), "note": self.bt_note},
            "diagnostics": self.diagnostics.to_json(),
            "generation": dict(self.generation),
            "judging": dict(self.judging),
            "qlora_eval_version": self.qlora_eval_version,
            "python_version": self.python_version,
            "created_at": self.created_at,
            "schema_version": self.schema_version,
            # Only when there are any, so files without findings keep the earlier layout byte for byte.
            **({"findings": [dict(f) for f in self.findings]} if self.findings else {}),
        }

    def dumps(self) -> str:
        """The file text (indented, strict JSON: no NaN)."""
        return json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, data: Any, *, source: str | None = None) -> TournamentDocument:
        """Read a tournament document of any version up to :data:`SCHEMA_VERSION`.

        Raises:
            InputError: a newer version or a missing field (named).
        """
        version = schema_version_of(data, source)
        try:
            return cls(
                tournament=str(data["tournament"]),
                config=data["config"],
                judge=str(data["judge"]),
                prompt_set=str(data["prompt_set"]),
                prompts=int(data["prompts"]),
                elo=Ranking.from_json(data["elo"], source=source, where="elo"),
                bt=Ranking.from_json(data["bt"], source=source, where="bt"),
                bt_note=data["bt"].get("note"),
                diagnostics=Diagnostics.from_json(data.get("diagnostics")),
                generation=data["generation"],
                judging=data["judging"],
                qlora_eval_version=str(data["qlora_eval_version"]),
                python_version=str(data["python_version"]),
                created_at=str(data["created_at"]),
                schema_version=version,
                findings=tuple(data.get("findings", ())),
            )
        except KeyError as exc:
            raise InputError(
                f"field {exc.args[0]!r} is missing; expected the output of qlora-eval tournament --json", source=source
            ) from exc

    @classmethod
    def load(cls, path: str | Path) -> TournamentDocument:
        """Read a ``tournament --json`` file."""
        return cls.from_json(read_json(path), source=str(path))

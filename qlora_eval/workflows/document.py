"""The ranking JSON, typed and versioned: the one definition of what ``rank --json`` and ``tournament --json`` write.

Users' CI reads these files, so every field keeps its name and place; new fields may only be added, and a
change of meaning raises :data:`SCHEMA_VERSION`. Files written before the version existed (no
``schema_version`` key) are version 0 and have the same layout, so they load as they are.

``rank --json``::

    {"method", "rounds", "battles", "invalid",
     "models": [{"model", "rating", "se", "ci_low", "ci_high", "rank", "wins", "losses", "ties"}, ...],  # best first
     "bias", "length_preference", "invalid_per_model", "rank_ranges", "win_rates", "parameters",
     "diagnostics": {"position_bias", "length_preference", "agreement"},
     "seed", "judges", "prompt_sets", "inputs": [{"path", "sha256", "records"}], "data_sha256", "command",
     "qlora_eval_version", "python_version", "numpy_version", "created_at", "schema_version"}

Optional keys, written only when present: ``adjustments`` (after ``parameters``: Bradley-Terry with
``--position-bias on`` or ``--control``) and ``placement`` (last: ``qlora-eval place --json``).

``tournament --json`` is :class:`~qlora_eval.workflows.tournament_document.TournamentDocument`, built from
the same :class:`Ranking` and :class:`Diagnostics`.

Only what ``check`` needs is required when reading (``method`` and each model's ``model``, ``rating``,
``ci_low``, ``ci_high``); a missing optional field reads as None (or empty) and is written back as null.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qlora_eval.errors import InputError
from qlora_eval.paths import read_text

#: Version of the layout written by this code; files without the key are version 0 (the same layout).
SCHEMA_VERSION = 1
METHODS = ("elo", "bt")
_RANKING_KEYS = (
    "method",
    "rounds",
    "battles",
    "invalid",
    "models",
    "bias",
    "length_preference",
    "invalid_per_model",
    "rank_ranges",
    "win_rates",
    "parameters",
)


@dataclass(frozen=True)
class ModelRow:
    """One model of a ranking (best first in :attr:`Ranking.models`)."""

    model: str
    rating: float
    ci_low: float
    ci_high: float
    se: float | None = None
    rank: int | None = None
    wins: int | None = None
    losses: int | None = None
    ties: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object, keys in the order of the pre-versioned files."""
        return {
            "model": self.model,
            "rating": self.rating,
            "se": self.se,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "rank": self.rank,
            "wins": self.wins,
            "losses": self.losses,
            "ties": self.ties,
        }


@dataclass(frozen=True)
class Ranking:
    """One method's ratings over one set of battles (``RankingResult.to_json_dict`` plus the seed).

    Attributes:
        method: ``elo`` or ``bt``.
        rounds: Elo orderings or BT bootstrap rounds (None when the file lacks it).
        battles: valid battles rated.
        invalid: invalid verdicts left out.
        models: the ratings, best first.
        bias: position bias over all judges, with ``by_judge``.
        length_preference: the length statistic, None without answer texts.
        invalid_per_model: model -> invalid verdicts.
        rank_ranges: model -> (best rank, worst rank).
        win_rates: ``models``, ``counts``, ``observed``, ``predicted`` matrices.
        parameters: the rating method's parameters (``parameters.fit``: the fit options used).
        seed: the seed of orderings / bootstrap.
        adjustments: Bradley-Terry with ``--position-bias on`` or ``--control``: the first-position advantage
            and the style coefficients with intervals, and the style-controlled ratings (None otherwise; the
            key is written only when present).
    """

    method: str
    models: tuple[ModelRow, ...]
    rounds: int | None = None
    battles: int | None = None
    invalid: int | None = None
    bias: Mapping[str, Any] = field(default_factory=dict)
    length_preference: Mapping[str, Any] | None = None
    invalid_per_model: Mapping[str, int] = field(default_factory=dict)
    rank_ranges: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    win_rates: Mapping[str, Any] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    adjustments: Mapping[str, Any] | None = None

    @classmethod
    def from_result(cls, result: Any, *, seed: int) -> Ranking:
        """The ranking of a ``qlora_eval.rating.RankingResult`` (through its JSON form, the one serialisation)."""
        return cls.from_json({**result.to_json_dict(), "seed": seed})

    def rating_of(self, model: str) -> ModelRow:
        """The row of ``model``.

        Raises:
            KeyError: the model is not ranked.
        """
        for row in self.models:
            if row.model == model:
                return row
        raise KeyError(model)

    def ranking_json(self) -> dict[str, Any]:
        """The ranking keys without the seed (the rank document puts the diagnostics between them)."""
        return {
            "method": self.method,
            "rounds": self.rounds,
            "battles": self.battles,
            "invalid": self.invalid,
            "models": [m.to_json() for m in self.models],
            "bias": dict(self.bias),
            "length_preference": dict(self.length_preference) if self.length_preference is not None else None,
            "invalid_per_model": dict(self.invalid_per_model),
            "rank_ranges": {m: [best, worst] for m, (best, worst) in self.rank_ranges.items()},
            "win_rates": dict(self.win_rates),
            "parameters": dict(self.parameters),
        } | ({"adjustments": dict(self.adjustments)} if self.adjustments is not None else {})

    def to_json(self) -> dict[str, Any]:
        """The JSON object of a tournament's ``elo``/``bt`` entry."""
        return {**self.ranking_json(), "seed": self.seed}

    @classmethod
    def from_json(cls, data: Any, *, source: str | None = None, where: str = "") -> Ranking:
        """Read and check a ranking object.

        Raises:
            InputError: a missing or ill-typed required field (named, with ``source``).
        """
        prefix = f"{where}." if where else ""
        if not isinstance(data, dict) or not isinstance(data.get("models"), list):
            raise InputError(
                f"expected a JSON object with a '{prefix}models' list (the output of qlora-eval rank --json)",
                source=source,
            )
        method = data.get("method")
        if method not in METHODS:
            raise InputError(f"'{prefix}method' is {method!r}; expected 'elo' or 'bt'", source=source)
        rows: list[ModelRow] = []
        seen: set[str] = set()
        for i, item in enumerate(data["models"]):
            rows.append(_model_row(item, f"{prefix}models[{i}]", source))
            if rows[-1].model in seen:
                raise InputError(f"{prefix}models[{i}]: model {rows[-1].model!r} is listed twice", source=source)
            seen.add(rows[-1].model)
        if not rows:
            raise InputError(f"the '{prefix}models' list is empty", source=source)
        ranges = data.get("rank_ranges") or {}
        return cls(
            method=method,
            models=tuple(rows),
            rounds=_int_or_none(data.get("rounds")),
            battles=_int_or_none(data.get("battles")),
            invalid=_int_or_none(data.get("invalid")),
            bias=data.get("bias") or {},
            length_preference=data.get("length_preference"),
            invalid_per_model=data.get("invalid_per_model") or {},
            rank_ranges={m: (int(r[0]), int(r[1])) for m, r in ranges.items()},
            win_rates=data.get("win_rates") or {},
            parameters=data.get("parameters") or {},
            seed=_int_or_none(data.get("seed")),
            adjustments=data.get("adjustments") if isinstance(data.get("adjustments"), dict) else None,
        )


@dataclass(frozen=True)
class Diagnostics:
    """The ``diagnostics`` key: judge position bias, length preference, agreement between judges.

    Attributes:
        position_bias: how often the answer shown first won, and swap consistency.
        length_preference: how often the longer answer won (None without answer texts).
        agreement: one object per pair of judges with shared battles.
        judge: the tournament's judge (tournament documents only; None in rank documents).
        groups: per judge and per judge group (``human:*``) sharing prompts with another judge: majority votes and
            Fleiss' kappa among its raters (``qlora_eval.human.group_agreement``); empty with a single judge.
        majority_agreement: each judge against each group's majority: Cohen's kappa, Kendall tau, Spearman rho.
    """

    position_bias: Mapping[str, Any] = field(default_factory=dict)
    length_preference: Mapping[str, Any] | None = None
    agreement: tuple[Mapping[str, Any], ...] = ()
    judge: str | None = None
    groups: tuple[Mapping[str, Any], ...] = ()
    majority_agreement: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        head = {"judge": self.judge} if self.judge is not None else {}
        # Written only when two or more judges share prompts, so single-judge documents keep their shape.
        groups = {"groups": [dict(g) for g in self.groups]} if self.groups else {}
        majority = {"majority_agreement": [dict(m) for m in self.majority_agreement]} if self.majority_agreement else {}
        return {
            **head,
            "position_bias": dict(self.position_bias),
            "length_preference": dict(self.length_preference) if self.length_preference is not None else None,
            "agreement": [dict(a) for a in self.agreement],
            **groups,
            **majority,
        }

    @classmethod
    def from_json(cls, data: Any) -> Diagnostics:
        if not isinstance(data, dict):
            return cls()
        return cls(
            position_bias=data.get("position_bias") or {},
            length_preference=data.get("length_preference"),
            agreement=tuple(data.get("agreement") or ()),
            judge=data.get("judge"),
            groups=tuple(data.get("groups") or ()),
            majority_agreement=tuple(data.get("majority_agreement") or ()),
        )


@dataclass(frozen=True)
class InputRecord:
    """An input of the ranking: a verdict file or the store, its sha256 and how many records it gave."""

    path: str
    sha256: str
    records: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "records": self.records}


@dataclass(frozen=True)
class RankDocument:
    """What ``qlora-eval rank --json`` writes and ``check`` reads.

    Attributes:
        ranking: the ratings (its keys sit at the top level of the JSON).
        diagnostics: judge diagnostics.
        judges: judge ids whose verdicts were ranked.
        prompt_sets: their prompt sets.
        inputs: input files (or the store) with sha256.
        data_sha256: one hash of exactly the verdicts ranked.
        command: the command line that made it.
        qlora_eval_version: package version.
        python_version: Python version.
        numpy_version: numpy version.
        created_at: ISO-8601 UTC time.
        schema_version: layout version of the file (0: written before versions existed).
        placement: ``place --json`` only: ``{"model", "rivals", "calls", "round_robin_calls", "stopped", "steps"}``
            (written after ``schema_version``, only when present).
    """

    ranking: Ranking
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    judges: tuple[str, ...] = ()
    prompt_sets: tuple[str, ...] = ()
    inputs: tuple[InputRecord, ...] = ()
    data_sha256: str | None = None
    command: str | None = None
    qlora_eval_version: str | None = None
    python_version: str | None = None
    numpy_version: str | None = None
    created_at: str | None = None
    schema_version: int = SCHEMA_VERSION
    placement: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object; keys in the order of the pre-versioned files, ``schema_version`` (then ``placement``)."""
        return {
            **self.ranking.ranking_json(),
            "diagnostics": self.diagnostics.to_json(),
            "seed": self.ranking.seed,
            "judges": list(self.judges),
            "prompt_sets": list(self.prompt_sets),
            "inputs": [i.to_json() for i in self.inputs],
            "data_sha256": self.data_sha256,
            "command": self.command,
            "qlora_eval_version": self.qlora_eval_version,
            "python_version": self.python_version,
            "numpy_version": self.numpy_version,
            "created_at": self.created_at,
            "schema_version": self.schema_version,
        } | ({"placement": dict(self.placement)} if self.placement is not None else {})

    def dumps(self) -> str:
        """The file text (indented, strict JSON: no NaN)."""
        return json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, data: Any, *, source: str | None = None) -> RankDocument:
        """Read a rank document of any version up to :data:`SCHEMA_VERSION`.

        Raises:
            InputError: a newer version, or a missing or ill-typed required field (named).
        """
        version = schema_version_of(data, source)
        ranking = Ranking.from_json(data, source=source)
        return cls(
            ranking=ranking,
            diagnostics=Diagnostics.from_json(data.get("diagnostics")),
            judges=tuple(data.get("judges") or ()),
            prompt_sets=tuple(data.get("prompt_sets") or ()),
            inputs=tuple(
                InputRecord(str(i["path"]), str(i["sha256"]), _int_or_none(i.get("records")))
                for i in data.get("inputs") or ()
            ),
            data_sha256=data.get("data_sha256"),
            command=data.get("command"),
            qlora_eval_version=data.get("qlora_eval_version"),
            python_version=data.get("python_version"),
            numpy_version=data.get("numpy_version"),
            created_at=data.get("created_at"),
            schema_version=version,
            placement=data.get("placement") if isinstance(data.get("placement"), dict) else None,
        )

    @classmethod
    def load(cls, path: str | Path) -> RankDocument:
        """Read a ``rank --json`` file.

        Raises:
            InputError: unreadable file, not JSON, or bad fields (named, with the file and line).
        """
        return cls.from_json(read_json(path), source=str(path))


def read_json(path: str | Path) -> Any:
    text = read_text(path, expected="a file written by qlora-eval rank --json")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not JSON ({exc.msg}); expected the output of qlora-eval rank --json", source=str(path), line=exc.lineno
        ) from exc


def schema_version_of(data: Any, source: str | None) -> int:
    if not isinstance(data, dict):
        raise InputError(
            "expected a JSON object with a 'models' list (the output of qlora-eval rank --json)", source=source
        )
    version = data.get("schema_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InputError(f"'schema_version' is {version!r}; expected a whole number >= 0", source=source)
    if version > SCHEMA_VERSION:
        raise InputError(
            f"schema_version {version} is newer than this qlora-eval reads ({SCHEMA_VERSION}); upgrade qlora-eval",
            source=source,
        )
    return version


def _model_row(item: Any, where: str, source: str | None) -> ModelRow:
    if not isinstance(item, dict) or not isinstance(item.get("model"), str):
        raise InputError(f"{where} needs a 'model' name", source=source)
    values = {}
    for key in ("rating", "ci_low", "ci_high"):
        value = item.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InputError(f"{where} ({item['model']}) field {key!r} is {value!r}; expected a number", source=source)
        values[key] = float(value)
    se = item.get("se")
    return ModelRow(
        model=item["model"],
        rating=values["rating"],
        ci_low=values["ci_low"],
        ci_high=values["ci_high"],
        se=float(se) if isinstance(se, int | float) and not isinstance(se, bool) else None,
        rank=_int_or_none(item.get("rank")),
        wins=_int_or_none(item.get("wins")),
        losses=_int_or_none(item.get("losses")),
        ties=_int_or_none(item.get("ties")),
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None

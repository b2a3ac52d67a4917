"""Typed tournament configs loaded from YAML (L1), checked field by field.

A tournament names its contestants, prompt set, judge, sampling, pairing and rating settings::

    name: demo
    db: reports/demo.db             # paths are relative to the directory qlora-eval runs in
    html: reports/demo.html
    json: reports/demo.json
    prompts: {name: demo, limit: null, data_dir: null}
    sampling: {temperature: 0.7, top_p: 0.9, max_new_tokens: 160, seed: 0}
    models:
      - smollm2-135m?name=smollm2-fp32                 # a spec string ...
      - spec: smollm2-135m?name=smollm2-greedy         # ... or a mapping with its own sampling overrides
        sampling: {do_sample: false}
    judge: {spec: "local:smollm2-135m", temperature: 0, max_tokens: 1024}
    pairs: all
    rounds: 200
    seed: 0
    concurrency: 4
    budget_usd: null
    rating: {elo_intervals: bootstrap, ties: half, prior: 0, anchor: null, position_bias: false, control: []}

Every error names the YAML file and the field (``models[2].sampling.temperature``) and what is expected.
Model and judge spec strings are only checked for presence here (this module sits below the model layer);
``qlora-eval tournament`` parses them before any work and reports errors with the same file and field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from qlora_eval.errors import ConfigError
from qlora_eval.paths import read_text
from qlora_eval.types import GenerationSettings

_SAMPLING_FIELDS = {"temperature": float, "top_p": float, "max_new_tokens": int, "seed": int, "do_sample": bool}
_TOP_FIELDS = {
    "name",
    "description",
    "db",
    "html",
    "json",
    "prompts",
    "sampling",
    "models",
    "judge",
    "pairs",
    "rounds",
    "seed",
    "concurrency",
    "budget_usd",
    "batch_size",
    "rating",
}
#: Pairing schemes of a tournament or judge run (``--pairs``); the one definition. ``all``: every unordered pair.
PAIRINGS = ("all",)


@dataclass(frozen=True)
class Contestant:
    """One model in a tournament: its spec and the sampling it answers with.

    Attributes:
        spec: the model spec text (``smollm2-135m?bits=4&name=smollm2-nf4``); it is parsed (and its errors
            reported with ``where``) by the command that runs the tournament, as config.py sits below the models.
        sampling: the tournament's sampling with this model's overrides applied.
        where: where in the YAML it came from (``models[2]``), for error messages.
    """

    spec: str
    sampling: GenerationSettings
    where: str = "models"


@dataclass(frozen=True)
class PromptsConfig:
    """Which prompts: a built-in set name (``demo``, ``vicuna``, ``oa``) or a file, optionally the first N."""

    name: str = "demo"
    data_dir: Path | None = None
    limit: int | None = None


@dataclass(frozen=True)
class JudgeConfig:
    """The judge spec and its sampling (temperature and max_tokens apply to API judges).

    ``batch``: judge through the OpenAI Batch API (openai judges only; results arrive on a later run).
    ``templates``: the judge template set, ``qlora-eval`` (ours) or ``qlora-paper`` (the paper's reviewer
    prompts; their files are found in ``prompts.data_dir`` or fetched once from the pinned URL).
    ``reuse_imported``: a judge (e.g. ``gpt-4``) whose imported verdicts count as done for the same prompt,
    models and order (the paper's published reviews: pay only for the new pairs).
    ``retry_invalid``: pay again for judgments stored as INVALID (``--retry-invalid``).
    ``template_dir``: a folder of our-style judge templates with their manifest (``--judge-template-dir``).
    ``local_batch_size``: prompts per forward pass of a local judge (``--local-batch-size``; None: 1 on a CPU,
    8 on a GPU).
    """

    spec: str = "openai:gpt-4"
    temperature: float = 0.0
    max_tokens: int = 1024
    batch: bool = False
    templates: str = "qlora-eval"
    reuse_imported: str | None = None
    retry_invalid: bool = False
    template_dir: Path | None = None
    local_batch_size: int | None = None


#: Choices of the ``rating:`` keys (the same values as rank's ``--elo-intervals``, ``--ties``, ``--control``).
ELO_INTERVALS = ("orderings", "bootstrap")
TIES = ("half", "davidson")
CONTROLS = ("length", "markdown")


@dataclass(frozen=True)
class RatingConfig:
    """How the ratings are fitted: the ``rating:`` mapping, with the meaning of rank's flags of the same names.

    Attributes:
        elo_intervals: ``bootstrap`` (prompts resampled) or ``orderings`` (order noise only).
        ties: Bradley-Terry ties, ``half`` or ``davidson``.
        prior: Bradley-Terry virtual games per pair (0: plain maximum likelihood; a fit without a finite
            estimate then falls back to 1, with a note in the report).
        anchor: ``MODEL=RATING`` to put that model at that rating (None: the mean is 1000).
        position_bias: fit a first-position advantage in Bradley-Terry.
        control: style covariates (``length``, ``markdown``) for style-controlled Bradley-Terry ratings.
    """

    elo_intervals: str = "bootstrap"
    ties: str = "half"
    prior: float = 0.0
    anchor: str | None = None
    position_bias: bool = False
    control: tuple[str, ...] = ()


@dataclass(frozen=True)
class TournamentConfig:
    """A whole tournament (see the module docstring for the YAML form).

    Attributes:
        name: shown in the report.
        models: the contestants (at least two, unique display names).
        prompts: the prompt set.
        sampling: default sampling of every contestant.
        judge: the judge.
        pairs: pairing scheme (``all``: round robin).
        rounds: bootstrap rounds of the ratings.
        seed: seeds the bootstrap and the judge's retry jitter.
        concurrency: API judge calls in flight.
        budget_usd: stop judging before spending more than this (None: no limit).
        batch_size: conversations per generation batch.
        rating: how the ratings are fitted (see :class:`RatingConfig`).
        db, html, json: where the store, the HTML report and the JSON rankings go.
        source: the YAML file this came from (None when built from options).
    """

    models: tuple[Contestant, ...]
    name: str = "tournament"
    description: str = ""
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    sampling: GenerationSettings = field(default_factory=GenerationSettings)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    pairs: str = "all"
    rounds: int = 200
    seed: int = 0
    concurrency: int = 4
    budget_usd: float | None = None
    batch_size: int = 8
    rating: RatingConfig = field(default_factory=RatingConfig)
    db: Path = Path("qlora-eval.db")
    html: Path = Path("reports/tournament.html")
    json: Path = Path("reports/tournament.json")
    source: str | None = None

    def __post_init__(self) -> None:
        where = self.source
        if len(self.models) < 2:
            raise ConfigError("field 'models': a tournament needs at least two models", source=where)
        if self.pairs not in PAIRINGS:
            raise ConfigError(f"field 'pairs': must be one of {list(PAIRINGS)}, got {self.pairs!r}", source=where)
        for key, value, low in (("rounds", self.rounds, 1), ("concurrency", self.concurrency, 1)):
            if value < low:
                raise ConfigError(f"field {key!r}: must be >= {low}, got {value}", source=where)
        if self.batch_size < 1:
            raise ConfigError(f"field 'batch_size': must be >= 1, got {self.batch_size}", source=where)
        if self.budget_usd is not None and self.budget_usd < 0:
            raise ConfigError(f"field 'budget_usd': must be >= 0, got {self.budget_usd}", source=where)

    def with_overrides(self, **changes: Any) -> TournamentConfig:
        """A copy with some fields replaced (command-line options over the YAML)."""
        return replace(self, **changes)


def load_tournament_config(path: Path) -> TournamentConfig:
    """Read and check a tournament YAML file.

    Raises:
        ConfigError: naming the file and the field, for unknown fields, wrong types, bad values and model specs.
    """
    source = str(path)
    if not path.exists():
        raise ConfigError("no such tournament file (see tournaments/*.yaml for examples)", source=source)
    text = read_text(path, expected="a tournament YAML file (UTF-8)")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read YAML: {exc}", source=source) from exc
    if not isinstance(data, dict):
        raise ConfigError("expected a YAML mapping of tournament fields", source=source)
    return tournament_from_dict(data, source=source, default_name=path.stem)


def tournament_from_dict(
    data: dict[str, Any], *, source: str | None, default_name: str = "tournament"
) -> TournamentConfig:
    """Build a checked config from a parsed YAML mapping (see :func:`load_tournament_config`)."""
    unknown = sorted(set(data) - _TOP_FIELDS)
    if unknown:
        raise ConfigError(f"unknown fields {unknown}; known fields: {sorted(_TOP_FIELDS)}", source=source)
    sampling = parse_sampling(data.get("sampling", {}), "sampling", source, GenerationSettings())
    raw_models = data.get("models")
    if not isinstance(raw_models, list):
        raise ConfigError("field 'models': expected a list of model specs or {spec, sampling} mappings", source=source)
    models = tuple(_contestant(item, f"models[{i}]", source, sampling) for i, item in enumerate(raw_models))
    defaults = TournamentConfig.__dataclass_fields__
    kwargs: dict[str, Any] = {
        "models": models,
        "name": _typed(data, "name", str, source, default_name),
        "description": _typed(data, "description", str, source, ""),
        "prompts": _prompts(data.get("prompts", {}), source),
        "sampling": sampling,
        "judge": _judge(data.get("judge", {}), source),
        "pairs": _typed(data, "pairs", str, source, "all"),
        "rounds": _typed(data, "rounds", int, source, defaults["rounds"].default),
        "seed": _typed(data, "seed", int, source, 0),
        "concurrency": _typed(data, "concurrency", int, source, defaults["concurrency"].default),
        "budget_usd": _optional_float(data, "budget_usd", source),
        "batch_size": _typed(data, "batch_size", int, source, defaults["batch_size"].default),
        "rating": parse_rating(data.get("rating", {}), source),
        "source": source,
    }
    for key in ("db", "html", "json"):
        if key in data:
            kwargs[key] = Path(_typed(data, key, str, source, ""))
    return TournamentConfig(**kwargs)


def parse_rating(raw: Any, source: str | None) -> RatingConfig:
    """The ``rating:`` mapping (keys as rank's flags, ``-`` or ``_``), checked value by value.

    Raises:
        ConfigError: naming the file and ``rating.KEY`` for an unknown key or a bad value.
    """
    if not isinstance(raw, dict):
        raise ConfigError("field 'rating': expected a mapping, e.g. {ties: davidson, prior: 1}", source=source)
    data = {str(k).replace("-", "_"): v for k, v in raw.items()}
    known = set(RatingConfig.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"field 'rating': unknown keys {unknown}; known: {sorted(known)}", source=source)
    base = RatingConfig()
    elo_intervals = _check_type(data.get("elo_intervals", base.elo_intervals), str, "rating.elo_intervals", source)
    ties = _check_type(data.get("ties", base.ties), str, "rating.ties", source)
    prior = _check_type(data.get("prior", base.prior), float, "rating.prior", source)
    anchor = data.get("anchor")
    position = data.get("position_bias", base.position_bias)
    if position in ("on", "off"):
        position = position == "on"
    position = _check_type(position, bool, "rating.position_bias", source)
    control = data.get("control", [])
    if isinstance(control, str):
        control = [c.strip() for c in control.split(",") if c.strip()]
    if not isinstance(control, list) or not all(isinstance(c, str) for c in control):
        raise ConfigError("field 'rating.control': expected a list such as [length, markdown]", source=source)
    for key, value, choices in (("elo_intervals", elo_intervals, ELO_INTERVALS), ("ties", ties, TIES)):
        if value not in choices:
            raise ConfigError(f"field 'rating.{key}': expected one of {list(choices)}, got {value!r}", source=source)
    bad = sorted(set(control) - set(CONTROLS))
    if bad:
        raise ConfigError(f"field 'rating.control': unknown {bad}; choose from {list(CONTROLS)}", source=source)
    if prior < 0:
        raise ConfigError(f"field 'rating.prior': virtual games must be >= 0, got {prior}", source=source)
    if anchor is not None:
        text = _check_type(anchor, str, "rating.anchor", source)
        model, sep, value = text.rpartition("=")
        try:
            float(value)
        except ValueError:
            sep = ""
        if not sep or not model:
            raise ConfigError(f"field 'rating.anchor': expected MODEL=RATING, got {text!r}", source=source)
    return RatingConfig(elo_intervals, ties, prior, anchor, position, tuple(c for c in CONTROLS if c in control))


def parse_sampling(raw: Any, where: str, source: str | None, base: GenerationSettings) -> GenerationSettings:
    """Sampling settings from a mapping, over ``base``."""
    if not isinstance(raw, dict):
        raise ConfigError(f"field {where!r}: expected a mapping of {sorted(_SAMPLING_FIELDS)}", source=source)
    unknown = sorted(set(raw) - set(_SAMPLING_FIELDS))
    if unknown:
        raise ConfigError(f"field {where!r}: unknown keys {unknown}; known: {sorted(_SAMPLING_FIELDS)}", source=source)
    values = base.to_dict()
    for key, value in raw.items():
        values[key] = _check_type(value, _SAMPLING_FIELDS[key], f"{where}.{key}", source)
    try:
        return GenerationSettings(**values)
    except ValueError as exc:
        raise ConfigError(f"field {where!r}: {exc}", source=source) from exc


def _contestant(item: Any, where: str, source: str | None, sampling: GenerationSettings) -> Contestant:
    if isinstance(item, str):
        spec, own = item, sampling
    elif isinstance(item, dict):
        unknown = sorted(set(item) - {"spec", "sampling"})
        if unknown or not isinstance(item.get("spec"), str):
            raise ConfigError(
                f"field {where!r}: expected a spec string or a mapping {{spec: SPEC, sampling: {{...}}}}"
                + (f"; unknown keys {unknown}" if unknown else ""),
                source=source,
            )
        spec = item["spec"]
        own = parse_sampling(item.get("sampling", {}), f"{where}.sampling", source, sampling)
    else:
        raise ConfigError(f"field {where!r}: expected a model spec string or mapping", source=source)
    if not spec.strip():
        raise ConfigError(f"field {where!r}: the model spec is empty", source=source)
    return Contestant(spec=spec, sampling=own, where=where)


def _prompts(raw: Any, source: str | None) -> PromptsConfig:
    if isinstance(raw, str):
        return PromptsConfig(name=raw)
    if not isinstance(raw, dict):
        raise ConfigError("field 'prompts': expected a set name or {name, data_dir, limit}", source=source)
    unknown = sorted(set(raw) - {"name", "data_dir", "limit"})
    if unknown:
        raise ConfigError(f"field 'prompts': unknown keys {unknown}; known: data_dir, limit, name", source=source)
    limit = raw.get("limit")
    if limit is not None:
        limit = _check_type(limit, int, "prompts.limit", source)
        if limit < 1:
            raise ConfigError(f"field 'prompts.limit': must be >= 1, got {limit}", source=source)
    data_dir = raw.get("data_dir")
    return PromptsConfig(
        name=_check_type(raw.get("name", "demo"), str, "prompts.name", source),
        data_dir=Path(_check_type(data_dir, str, "prompts.data_dir", source)) if data_dir is not None else None,
        limit=limit,
    )


def _judge(raw: Any, source: str | None) -> JudgeConfig:
    if isinstance(raw, str):
        return JudgeConfig(spec=raw)
    if not isinstance(raw, dict):
        raise ConfigError("field 'judge': expected a judge spec or {spec, temperature, max_tokens}", source=source)
    known = {
        "spec", "temperature", "max_tokens", "batch", "templates", "reuse_imported", "retry_invalid",
        "template_dir", "local_batch_size",
    }  # fmt: skip
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"field 'judge': unknown keys {unknown}; known: {', '.join(sorted(known))}", source=source)
    base = JudgeConfig()
    config = JudgeConfig(
        spec=_check_type(raw.get("spec", base.spec), str, "judge.spec", source),
        temperature=_check_type(raw.get("temperature", base.temperature), float, "judge.temperature", source),
        max_tokens=_check_type(raw.get("max_tokens", base.max_tokens), int, "judge.max_tokens", source),
        batch=_check_type(raw.get("batch", base.batch), bool, "judge.batch", source),
        retry_invalid=_check_type(raw.get("retry_invalid", base.retry_invalid), bool, "judge.retry_invalid", source),
        templates=_check_type(raw.get("templates", base.templates), str, "judge.templates", source),
        reuse_imported=(
            _check_type(raw["reuse_imported"], str, "judge.reuse_imported", source)
            if raw.get("reuse_imported") is not None
            else None
        ),
        template_dir=(
            Path(_check_type(raw["template_dir"], str, "judge.template_dir", source))
            if raw.get("template_dir") is not None
            else None
        ),
        local_batch_size=(
            _check_type(raw["local_batch_size"], int, "judge.local_batch_size", source)
            if raw.get("local_batch_size") is not None
            else None
        ),
    )
    if config.local_batch_size is not None and config.local_batch_size < 1:
        raise ConfigError(f"field 'judge.local_batch_size': must be >= 1, got {config.local_batch_size}", source=source)
    if config.templates not in ("qlora-eval", "qlora-paper"):
        raise ConfigError(
            f"field 'judge.templates': expected qlora-eval or qlora-paper, got {config.templates!r}", source=source
        )
    if config.temperature < 0 or config.max_tokens < 1:
        raise ConfigError("field 'judge': temperature must be >= 0 and max_tokens >= 1", source=source)
    return config


def _typed(data: dict[str, Any], key: str, kind: type, source: str | None, default: Any) -> Any:
    return _check_type(data[key], kind, key, source) if key in data else default


def _optional_float(data: dict[str, Any], key: str, source: str | None) -> float | None:
    value = data.get(key)
    return None if value is None else _check_type(value, float, key, source)


def _check_type(value: Any, kind: type, where: str, source: str | None) -> Any:
    # bool is an int in Python; a YAML "true" for a number (or 1 for a flag) is a mistake worth reporting.
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind in (str, bool) and isinstance(value, kind):
        return value
    raise ConfigError(f"field {where!r}: expected {kind.__name__}, got {value!r}", source=source)

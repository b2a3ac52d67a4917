"""Judge prices (dollars per million tokens) from an editable YAML table, and cost estimates.

The shipped table is ``qlora_eval/data/prices.yaml`` (``prompts/prices.yaml`` in the repository); a user
file given with ``--prices`` replaces entries model by model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from qlora_eval.errors import ConfigError
from qlora_eval.paths import read_text


@dataclass(frozen=True)
class Price:
    """Dollars per million prompt (input) and completion (output) tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


@dataclass(frozen=True)
class PriceTable:
    """Model name -> price, with the files it came from (for messages)."""

    prices: dict[str, Price]
    sources: tuple[str, ...]
    batch_prices: dict[str, Price] = field(default_factory=dict)

    def get(self, model: str) -> Price | None:
        """The price of ``model``; None when the table has no entry for it."""
        return self.prices.get(model)

    def get_batch(self, model: str) -> Price | None:
        """The Batch API price of ``model`` (``batch_input_per_mtok``/``batch_output_per_mtok``); None if unlisted."""
        return self.batch_prices.get(model)


def default_prices_path() -> Path:
    return Path(str(resources.files("qlora_eval") / "data" / "prices.yaml"))


def load_prices(override: Path | None = None) -> PriceTable:
    """The shipped price table, with the entries of ``override`` (a user YAML file) on top.

    Raises:
        ConfigError: naming the file and model when an entry is malformed.
    """
    prices, batch = _read_prices(default_prices_path())
    sources = [str(default_prices_path())]
    if override is not None:
        more, more_batch = _read_prices(override)
        for model in more:  # an entry replaces the whole model, batch price included
            batch.pop(model, None)
        prices.update(more)
        batch.update(more_batch)
        sources.append(str(override))
    return PriceTable(prices=prices, sources=tuple(sources), batch_prices=batch)


def estimate_tokens(chars: int, chars_per_token: float) -> int:
    """Tokens of a text of ``chars`` characters (rounded up), for estimates made before a call."""
    return math.ceil(chars / chars_per_token)


def _read_prices(path: Path) -> tuple[dict[str, Price], dict[str, Price]]:
    text = read_text(path, expected="a price table (YAML)")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read the price table: {exc}", source=str(path)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ConfigError("expected 'models: {MODEL: {input_per_mtok: X, output_per_mtok: Y}}'", source=str(path))
    prices: dict[str, Price] = {}
    batch_prices: dict[str, Price] = {}
    for model, entry in data["models"].items():
        if not isinstance(entry, dict):
            raise ConfigError(f"models.{model} must be a mapping", source=str(path))
        try:
            price = Price(float(entry["input_per_mtok"]), float(entry["output_per_mtok"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"models.{model} needs numbers input_per_mtok and output_per_mtok ({exc})", source=str(path)
            ) from exc
        if price.input_per_mtok < 0 or price.output_per_mtok < 0:
            raise ConfigError(f"models.{model}: prices must be >= 0", source=str(path))
        prices[str(model)] = price
        batch = _batch_price(entry, f"models.{model}", path)
        if batch is not None:
            batch_prices[str(model)] = batch
    return prices, batch_prices


def _batch_price(entry: dict[str, object], where: str, path: Path) -> Price | None:
    """The optional ``batch_input_per_mtok``/``batch_output_per_mtok`` pair of one entry."""
    given = [entry.get(f"batch_{side}_per_mtok") for side in ("input", "output")]
    if given == [None, None]:
        return None
    try:
        if None in given:
            raise ValueError("give both batch_input_per_mtok and batch_output_per_mtok, or neither")
        price = Price(float(given[0]), float(given[1]))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: batch prices must be two numbers ({exc})", source=str(path)) from exc
    if price.input_per_mtok < 0 or price.output_per_mtok < 0:
        raise ConfigError(f"{where}: batch prices must be >= 0", source=str(path))
    return price

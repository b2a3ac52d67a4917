"""The price table: shipped, overridable, checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlora_eval.errors import ConfigError
from qlora_eval.judge.pricing import Price, load_prices


def test_shipped_table_prices_gpt4() -> None:
    price = load_prices().get("gpt-4")
    assert price == Price(30.0, 60.0)
    assert price.cost(1000, 500) == pytest.approx(0.03 + 0.03)


def test_override_replaces_model_by_model(tmp_path: Path) -> None:
    override = tmp_path / "p.yaml"
    override.write_text(
        "models:\n  gpt-4: {input_per_mtok: 1, output_per_mtok: 2}\n  mine: {input_per_mtok: 0, output_per_mtok: 0}\n"
    )
    table = load_prices(override)
    assert table.get("gpt-4") == Price(1.0, 2.0)
    assert table.get("mine") == Price(0.0, 0.0)
    assert table.get("gpt-4o") is not None
    assert table.get("unknown") is None


def test_bad_entry_names_file_and_model(tmp_path: Path) -> None:
    override = tmp_path / "p.yaml"
    override.write_text("models:\n  m: {input_per_mtok: cheap}\n")
    with pytest.raises(ConfigError, match=r"p\.yaml: models\.m needs numbers"):
        load_prices(override)

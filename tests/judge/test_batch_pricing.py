"""Batch prices in the price table: shipped at half the synchronous price, editable, validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlora_eval.errors import ConfigError
from qlora_eval.judge.pricing import Price, load_prices


def test_shipped_openai_batch_prices_are_half_of_sync() -> None:
    table = load_prices()
    for model in ("gpt-4", "gpt-4o", "gpt-4o-mini"):
        sync, batch = table.get(model), table.get_batch(model)
        assert sync is not None and batch is not None
        assert batch == Price(sync.input_per_mtok / 2, sync.output_per_mtok / 2)


def test_a_user_entry_replaces_the_batch_price_too(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "models:\n  gpt-4o: {input_per_mtok: 1, output_per_mtok: 2}\n  mine: {input_per_mtok: 0, "
        "output_per_mtok: 0, batch_input_per_mtok: 0, batch_output_per_mtok: 0}\n"
    )
    table = load_prices(path)
    assert table.get_batch("gpt-4o") is None  # the user's entry has none: no stale shipped batch price
    assert table.get_batch("mine") == Price(0.0, 0.0)


@pytest.mark.parametrize(
    "entry",
    [
        "{input_per_mtok: 1, output_per_mtok: 2, batch_input_per_mtok: 1}",
        "{input_per_mtok: 1, output_per_mtok: 2, batch_input_per_mtok: -1, batch_output_per_mtok: 1}",
        "{input_per_mtok: 1, output_per_mtok: 2, batch_input_per_mtok: x, batch_output_per_mtok: 1}",
    ],
)
def test_bad_batch_prices_name_file_and_model(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"models:\n  m: {entry}\n")
    with pytest.raises(ConfigError, match=r"models\.m: batch prices") as info:
        load_prices(path)
    assert str(path) in str(info.value)

"""RankDocument / TournamentDocument: files written before versions existed load and write back unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlora_eval.errors import InputError
from qlora_eval.workflows.document import SCHEMA_VERSION, RankDocument
from qlora_eval.workflows.tournament_document import TournamentDocument

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("name", ["rank_v0_elo.json", "rank_v0_bt.json"])
def test_unversioned_rank_files_load_and_round_trip(name: str) -> None:
    """Files written by ``rank --json`` before the restructuring (no schema_version) keep every field and place."""
    raw = json.loads((FIXTURES / name).read_text())
    assert "schema_version" not in raw
    document = RankDocument.load(FIXTURES / name)
    assert document.schema_version == 0
    assert [m.model for m in document.ranking.models] == ["alpha", "bravo", "charlie"]
    assert document.ranking.method == raw["method"] and document.ranking.seed == raw["seed"]
    written = document.to_json()
    assert written.pop("schema_version") == 0
    assert written == raw and list(written) == list(raw)


def test_new_documents_carry_the_version_last() -> None:
    document = RankDocument.load(FIXTURES / "rank_v0_elo.json")
    fresh = RankDocument(**{**document.__dict__, "schema_version": SCHEMA_VERSION})
    text = json.loads(fresh.dumps())
    assert list(text)[-1] == "schema_version" and text["schema_version"] == SCHEMA_VERSION
    assert RankDocument.from_json(text) == fresh


def test_unversioned_tournament_file_round_trips() -> None:
    raw = json.loads((FIXTURES / "tournament_v0.json").read_text())
    document = TournamentDocument.load(FIXTURES / "tournament_v0.json")
    assert [m.model for m in document.elo.models] == ["ccc", "bb", "a"]
    assert document.diagnostics.judge == raw["judge"]
    written = document.to_json()
    assert written.pop("schema_version") == 0
    assert json.dumps(written) == json.dumps(raw)


def test_minimal_document_reads_with_optional_fields_empty() -> None:
    """``check`` accepts hand-written files with only method and each model's rating and interval."""
    doc = RankDocument.from_json({"method": "elo", "models": [{"model": "a", "rating": 1, "ci_low": 0, "ci_high": 2}]})
    row = doc.ranking.models[0]
    assert (row.rating, row.ci_low, row.ci_high, row.se, row.wins) == (1.0, 0.0, 2.0, None, None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"method": "elo", "models": [], "schema_version": SCHEMA_VERSION + 1}, "newer than this qlora-eval"),
        ({"method": "elo", "models": []}, "'models' list is empty"),
        ({"method": "x", "models": []}, "'method' is 'x'"),
        ({"method": "bt", "models": [{"model": "a", "rating": 1, "ci_low": 0}]}, "'ci_high'"),
        ({"method": "bt", "models": [{"model": "a", "rating": 1, "ci_low": 0, "ci_high": 2}] * 2}, "listed twice"),
        ({"method": "elo", "models": [], "schema_version": "1"}, "'schema_version'"),
    ],
)
def test_bad_documents_are_named(data: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        RankDocument.from_json(data, source="r.json")
    assert "r.json" in str(info.value)

"""Fuzz the rating app from its own OpenAPI schema (schemathesis, in-process ASGI): no request gets a 500.

Every schema-generated request is sent twice, with a valid rater token and without one, so both the validation
paths and the auth paths see hostile input. A second test posts raw JSON bodies (NaN and Infinity included,
which JSON Schema generators never make) to the vote and skip endpoints. Example counts are bounded so both
run in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("schemathesis")
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qlora_eval.web.app import create_app
from tests.web.helpers import bearer, new_rater, seed_store

EXAMPLES = 25


@pytest.fixture
def fuzz_db(tmp_path: Path) -> Path:
    db = tmp_path / "fuzz.db"
    seed_store(db)
    return db


@pytest.fixture
def fuzz_token(fuzz_db: Path) -> str:
    return new_rater(fuzz_db, "alice")


@pytest.fixture
def api_schema(fuzz_db: Path) -> Any:
    app = create_app(fuzz_db)
    loaded = schemathesis.openapi.from_dict(app.openapi())
    loaded.app = app  # as schemathesis.openapi.from_asgi does: calls go to the app in-process
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_500(case: Any, fuzz_token: str) -> None:
    for headers in (bearer(fuzz_token), None):
        response = case.call(headers=headers)
        assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])


# JSON as Python's json module writes it (NaN and Infinity included), in the shape of a vote or not.
_special = st.sampled_from([float("nan"), float("inf"), float("-inf")])
_scalars = st.none() | st.booleans() | st.integers() | _special | st.floats() | st.text()
_json = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3)
)
_votes = st.fixed_dictionaries(
    {"assignment_id": _json, "choice": st.sampled_from(["left", "right", "tie", "both_bad"]) | _json},
    optional={"rationale": _json},
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=_votes | _json)
def test_raw_json_bodies_never_get_a_500(fuzz_client: Any, body: Any) -> None:
    client, token = fuzz_client
    raw = json.dumps(body, allow_nan=True)
    for path in ("/api/votes", "/api/skip"):
        r = client.post(path, headers={**bearer(token), "Content-Type": "application/json"}, content=raw)
        assert r.status_code < 500, (path, raw[:200], r.status_code, r.text[:300])


@pytest.fixture
def fuzz_client(fuzz_db: Path, fuzz_token: str) -> tuple[Any, str]:
    from fastapi.testclient import TestClient

    return TestClient(create_app(fuzz_db), raise_server_exceptions=False), fuzz_token

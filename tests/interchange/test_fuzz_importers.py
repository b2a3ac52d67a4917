"""Issue 14: fuzz every importer in the FORMATS registry with hypothesis: random bytes, truncated files, and
corrupted lines of a valid sample. Always a clean import or a QloraEvalError (exit 2 in the CLI), never
a traceback; on error the store is unchanged."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qlora_eval.errors import QloraEvalError
from qlora_eval.interchange import FORMATS, read_inputs
from qlora_eval.store import Store
from qlora_eval.workflows.importing import store_imported
from tests.interchange.samples import NEEDS_SHARED_DATA, write_sample

FAST = sorted(set(FORMATS) - set(NEEDS_SHARED_DATA))


def _import(fmt: str, data: bytes, shared: Path | None, db: Path) -> None:
    """Write ``data`` as the sample's file, read and store it; assert only QloraEvalErrors and no partial write."""
    with tempfile.TemporaryDirectory() as tmp:
        path, options = write_sample(fmt, Path(tmp) / "in", "m1", shared)
        path.write_bytes(data)
        with Store(db) as store:
            before = store.counts()
            try:
                batch = read_inputs([path], fmt, options)
                store_imported(store, batch)
            except QloraEvalError:
                assert store.counts() == before  # nothing half-written
            # Anything else (KeyError, TypeError, UnicodeDecodeError, RecursionError ...) fails the test.


def _sample_bytes(fmt: str, shared: Path | None) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path, _ = write_sample(fmt, Path(tmp), "m1", shared)
        return path.read_bytes()


@st.composite
def _mutations(draw: st.DrawFn, sample: bytes) -> bytes:
    lines = sample.split(b"\n")
    kind = draw(st.sampled_from(["truncate", "random", "splice-line", "json-value", "drop-bytes"]))
    if kind == "truncate":
        return sample[: draw(st.integers(0, len(sample)))]
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "splice-line":
        index = draw(st.integers(0, max(0, len(lines) - 1)))
        lines[index] = draw(st.binary(max_size=80))
        return b"\n".join(lines)
    if kind == "json-value":  # a valid JSON line of the wrong shape, or with a field's value replaced
        value = draw(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                                  lambda inner: st.lists(inner, max_size=3)
                                  | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8))  # fmt: skip
        try:
            row = json.loads(lines[0])
        except ValueError:
            return json.dumps(value).encode()
        if isinstance(row, dict) and row:
            key = draw(st.sampled_from(sorted(row)))
            row[key] = value
            lines[0] = json.dumps(row).encode()
        elif isinstance(row, list) and row:
            row[0] = value
            lines[0] = json.dumps(row).encode()
        return b"\n".join(lines)
    start = draw(st.integers(0, len(sample)))
    return sample[:start] + sample[start + draw(st.integers(1, 20)) :]


@pytest.mark.parametrize("fmt", FAST)
def test_fuzzed_files_import_cleanly_or_raise_a_clear_error(fmt: str, tmp_path: Path) -> None:
    sample = _sample_bytes(fmt, None)
    db = tmp_path / "s.db"

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=_mutations(sample))
    def run(data: bytes) -> None:
        _import(fmt, data, None, db)

    run()


@pytest.mark.parametrize("fmt", NEEDS_SHARED_DATA)
def test_fuzzed_files_of_formats_reading_prompt_files(fmt: str, tmp_path: Path, shared_data: Path) -> None:
    sample = _sample_bytes(fmt, shared_data)
    db = tmp_path / "s.db"

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=_mutations(sample))
    def run(data: bytes) -> None:
        _import(fmt, data, shared_data, db)

    run()


def test_every_registered_format_is_fuzzed() -> None:
    assert set(FAST) | set(NEEDS_SHARED_DATA) == set(FORMATS)

"""Imports into the store: counts, idempotence and consistency checks across files (hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qlora_eval.errors import InputError
from qlora_eval.interchange import ImportOptions, read_inputs
from qlora_eval.store import Store
from qlora_eval.workflows.importing import store_imported
from tests.interchange.fixtures import write_jsonl, write_qlora

PAIRS = st.sampled_from([("m1", "m2"), ("m2", "m1"), ("m1", "m3"), ("m3", "m2")])
FILES = st.lists(
    st.tuples(PAIRS, st.lists(st.sampled_from([1, 2, 3, -1]), min_size=1, max_size=15), st.integers(1, 20)),
    min_size=1,
    max_size=4,
)


@settings(max_examples=30, deadline=None)
@given(files=FILES)
def test_store_keeps_one_row_per_key_and_reimport_adds_nothing(
    files: list[tuple[tuple[str, str], list[int], int]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = []
        for i, ((a, b), scores, first_id) in enumerate(files):
            sub = folder / f"f{i}"  # same pair twice = same file name, so each file gets its own folder
            sub.mkdir()
            paths.append(write_qlora(sub, a, b, scores, first_id=first_id))
        batch = read_inputs(paths, "qlora", ImportOptions())
        keys = [j.judgment_key for j in batch.judgments]
        verdicts: dict[str, set[str]] = {}
        for j in batch.judgments:
            verdicts.setdefault(j.judgment_key, set()).add(j.verdict.value)
        if any(len(v) > 1 for v in verdicts.values()):
            # Issue 12: a different verdict for the same call is a conflict, never "1 duplicate": nothing stored.
            with Store(folder / "s.db") as store:
                with pytest.raises(InputError, match="conflicting verdict"):
                    store_imported(store, batch)
                assert store.judgments() == []
            return
        with Store(folder / "s.db") as store:
            counts = store_imported(store, batch)
            assert counts.judgments_new == len(set(keys))
            assert counts.judgments_new + counts.judgments_duplicate == len(keys)
            stored = {s.key for s in store.judgments()}
            assert stored == set(keys)
            again = store_imported(store, batch)
            assert (again.judgments_new, again.judgments_duplicate) == (0, len(keys))
            # The first verdict stored for a key stands (append-only), as in the input order.
            first: dict[str, str] = {}
            for j in batch.judgments:
                first.setdefault(j.judgment_key, j.verdict.value)
            assert {s.key: s.judgment.verdict.value for s in store.judgments()} == first


def test_conflicting_answers_across_files_are_refused(tmp_path: Path) -> None:
    one = write_jsonl(tmp_path / "one.jsonl", [{"model": "m", "prompt_id": 1, "prompt": "Q?", "text": "A"}])
    two = write_jsonl(tmp_path / "two.jsonl", [{"model": "m", "prompt_id": 1, "prompt": "Q?", "text": "B"}])
    with pytest.raises(InputError, match="two different answers"):
        read_inputs([one, two], "answers", ImportOptions())
    other = write_jsonl(tmp_path / "three.jsonl", [{"model": "n", "prompt_id": 1, "prompt": "Other?", "text": "C"}])
    with pytest.raises(InputError, match="different texts in different input files"):
        read_inputs([one, other], "answers", ImportOptions())

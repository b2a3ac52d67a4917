"""The store's batch submissions: states, in-flight keys, refusal to hold a key in two open batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlora_eval.errors import StoreError
from qlora_eval.store import BatchItem, Store, SubmissionState


def _items(*keys: str) -> list[BatchItem]:
    return [BatchItem(k, {"n": i}) for i, k in enumerate(keys)]


def test_lifecycle_and_in_flight_keys(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        assert store.schema_version() >= 4
        store.add_batch_submission("s1", judge="openai:m", endpoint="http://x/v1", items=_items("k1", "k2"))
        assert store.in_flight_keys() == {"k1", "k2"}
        store.set_batch_file("s1", "file-1")
        store.set_batch_created("s1", "batch-1", "validating")
        store.set_batch_status("s1", "in_progress")
        sub = store.batch_submission("s1")
        assert (sub.state, sub.file_id, sub.batch_id, sub.batch_status) == (
            SubmissionState.SUBMITTED,
            "file-1",
            "batch-1",
            "in_progress",
        )
        assert [i.request for i in store.batch_items("s1")] == [{"n": 0}, {"n": 1}]
        store.finish_batch_submission("s1", "completed", {"new": 2})
        assert store.in_flight_keys() == set()
        assert store.batch_submission("s1").summary == {"new": 2}
        assert store.batch_submissions(open_only=True) == []


def test_a_key_cannot_be_in_two_open_submissions(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.add_batch_submission("s1", judge="j", endpoint="e", items=_items("k1", "k2"))
        with pytest.raises(StoreError, match="already in an open batch"):
            store.add_batch_submission("s2", judge="j", endpoint="e", items=_items("k2", "k3"))
        assert [s.submission_id for s in store.batch_submissions()] == ["s1"]  # nothing of s2 was written
        store.abandon_batch_submission("s1", "never uploaded")
        store.add_batch_submission("s2", judge="j", endpoint="e", items=_items("k2", "k3"))
        assert store.in_flight_keys() == {"k2", "k3"}


def test_illegal_moves_are_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.add_batch_submission("s1", judge="j", endpoint="e", items=_items("k1"))
        with pytest.raises(StoreError, match="cannot become submitted"):
            store.set_batch_created("s1", "b", "validating")  # no file recorded yet
        store.set_batch_file("s1", "f")
        store.set_batch_created("s1", "b", "validating")
        with pytest.raises(StoreError, match="cannot become abandoned"):
            store.abandon_batch_submission("s1", "a created batch is never abandoned")
        with pytest.raises(StoreError, match="no batch submission"):
            store.batch_submission("nope")

"""The store's connection: WAL, transactions, bad paths, threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from qlora_eval.errors import StoreError
from qlora_eval.store import Store, latest_version
from tests.store.helpers import judgment


def test_new_store_has_latest_schema_and_wal(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        assert s.schema_version() == latest_version()
        assert s.journal_mode() == "wal"


def test_failed_transaction_leaves_store_untouched(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        s.add_judgments([judgment("1")])
        before = s.counts()
        with pytest.raises(RuntimeError), s.atomic():
            s.add_judgments([judgment("2")])
            s.add_model("m3", "hf:x")
            raise RuntimeError("boom")
        assert s.counts() == before


def test_bad_paths_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a folder"):
        Store(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "missing" / "s.db")
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError):
        Store(tmp_path / "junk.db")


def test_threads_adding_the_same_judgments_store_each_once(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        items = [judgment(str(i)) for i in range(50)]
        threads = [threading.Thread(target=s.add_judgments, args=(items,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert s.counts()["judgments"] == 50

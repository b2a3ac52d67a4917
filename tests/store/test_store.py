"""The SQLite store: migrations, content keys, append-only tables, transactions, threads."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qlora_eval import store as store_module
from qlora_eval.errors import StoreError
from qlora_eval.store import Store, latest_version
from qlora_eval.types import Answer, Judgment, Message, Order, Prompt, Role, Verdict


def judgment(prompt_id: str = "1", verdict: Verdict = Verdict.A, a: str = "m1", b: str = "m2") -> Judgment:
    return Judgment(
        judge="gpt-4",
        model_a=a,
        model_b=b,
        prompt_set="vicuna",
        prompt_id=prompt_id,
        verdict=verdict,
        order=Order.of(a, b),
        template_hash="t1",
        settings={"temperature": 0.0},
    )


def test_new_store_has_latest_schema_and_wal(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        assert s.schema_version() == latest_version()
        assert s.execute("PRAGMA journal_mode")[0][0] == "wal"


def test_duplicate_judgments_are_stored_once(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        assert s.add_judgments([judgment(), judgment()]) == 1
        assert s.add_judgments([judgment()]) == 0
        assert s.add_judgments([judgment(verdict=Verdict.B)]) == 0  # same call, same key: the first result stands
        assert s.counts()["judgments"] == 1


def test_judgments_and_answers_are_append_only(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        s.add_judgments([judgment()])
        s.add_answers([Answer("m1", "hf:m1", "vicuna", "1", "h", "text", {})])
        for sql in ("UPDATE judgments SET verdict = 'B'", "DELETE FROM judgments", "DELETE FROM answers"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"), s.transaction() as conn:
                conn.execute(sql)
        assert s.judgments()[0].judgment.verdict is Verdict.A


def test_failed_transaction_leaves_store_untouched(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        s.add_judgments([judgment("1")])
        before = s.counts()
        with pytest.raises(RuntimeError), s.transaction():
            s.add_judgments([judgment("2")])
            s.add_model("m3", "hf:x")
            raise RuntimeError("boom")
        assert s.counts() == before


def test_round_trip_of_answers_and_prompts(tmp_path: Path) -> None:
    prompt = Prompt("oa", "7", (Message(Role.USER, "hi"), Message(Role.ASSISTANT, "hello"), Message(Role.USER, "2+2?")))
    answer = Answer("m1", "hf:m1", "oa", "7", prompt.content_hash, "4", {"temperature": 0.7}, 5, 1, 0.1)
    with Store(tmp_path / "s.db") as s:
        assert s.add_prompts([prompt, prompt], set_version="1", set_hash="abc") == 1
        assert s.add_answers([answer, answer]) == 1
        assert s.prompts("oa") == [prompt]
        assert s.get_answer(answer.answer_key) == answer
        assert s.has_answers([answer.answer_key, "nope"]) == {answer.answer_key}


def test_migration_applies_missing_steps_and_keeps_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.db"
    with Store(path) as s:
        s.add_judgments([judgment()])
    v2 = (latest_version() + 1, "CREATE TABLE extra (x INTEGER);")
    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, v2])
    with Store(path) as s:
        assert s.schema_version() == v2[0]
        assert s.counts()["judgments"] == 1
        assert s.execute("SELECT COUNT(*) FROM extra")[0][0] == 0


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 999")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


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


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 20), st.sampled_from(list(Verdict)), st.sampled_from(["m1", "m2", "m3"])),
        max_size=40,
    )
)
def test_store_keeps_exactly_the_distinct_keys(tmp_path_factory: pytest.TempPathFactory, rows: list) -> None:
    judgments = [judgment(str(p), v, a, "m4") for p, v, a in rows]
    with Store(tmp_path_factory.mktemp("h") / "s.db") as s:
        s.add_judgments(judgments)
        s.add_judgments(reversed(judgments))
        stored = s.judgments()
        first_by_key: dict[str, Judgment] = {}
        for j in judgments:
            first_by_key.setdefault(j.judgment_key, j)
        assert {sj.key for sj in stored} == set(first_by_key)
        for sj in stored:
            assert sj.judgment == first_by_key[sj.key]

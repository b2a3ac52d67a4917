"""Records: content keys stored once, append-only tables, round trips."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qlora_eval.store import Store
from qlora_eval.types import Answer, Judgment, Message, Prompt, Role, Verdict
from tests.store.helpers import judgment


def test_duplicate_judgments_are_stored_once(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        assert s.add_judgments([judgment(), judgment()]) == 1
        assert s.add_judgments([judgment()]) == 0
        assert s.add_judgments([judgment(verdict=Verdict.B)]) == 0  # same call, same key: the first result stands
        assert s.counts()["judgments"] == 1


def test_judgments_and_answers_are_append_only(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as s:
        s.add_judgments([judgment()])
        s.add_answers([Answer("m1", "hf:m1", "vicuna", "1", "h", "text", {})])
        # The triggers hold for any writer of the file, not only for the Store's own methods.
        with closing(sqlite3.connect(path)) as conn:
            for sql in ("UPDATE judgments SET verdict = 'B'", "DELETE FROM judgments", "DELETE FROM answers"):
                with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                    conn.execute(sql)
        assert s.judgments()[0].judgment.verdict is Verdict.A


def test_round_trip_of_answers_and_prompts(tmp_path: Path) -> None:
    prompt = Prompt("oa", "7", (Message(Role.USER, "hi"), Message(Role.ASSISTANT, "hello"), Message(Role.USER, "2+2?")))
    answer = Answer("m1", "hf:m1", "oa", "7", prompt.content_hash, "4", {"temperature": 0.7}, 5, 1, 0.1)
    with Store(tmp_path / "s.db") as s:
        assert s.add_prompts([prompt, prompt], set_version="1", set_hash="abc") == 1
        assert s.add_answers([answer, answer]) == 1
        assert s.prompts("oa") == [prompt]
        assert s.get_answer(answer.answer_key) == answer
        assert s.has_answers([answer.answer_key, "nope"]) == {answer.answer_key}


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


def test_typed_reads_of_prompt_versions_lengths_sets_and_failures(tmp_path: Path) -> None:
    old = Prompt("oa", "1", (Message(Role.USER, "hi"),))
    new = Prompt("oa", "1", (Message(Role.USER, "hello there"),))
    answer = Answer("m1", "hf:m1", "oa", "1", new.content_hash, "four", {})
    with Store(tmp_path / "s.db") as s:
        s.add_prompts([old], set_version="1", set_hash="h1")
        s.add_prompts([new], set_version="2", set_hash="h2")
        s.add_answers([answer])
        versions = s.prompt_versions("oa")
        assert [(v.content_hash, v.set_version, v.set_hash) for v in versions] == [
            (old.content_hash, "1", "h1"),
            (new.content_hash, "2", "h2"),
        ]
        assert [v.prompt for v in versions] == [old, new]
        assert s.prompts("oa") == [new]
        assert s.answer_lengths([answer.answer_key, "missing"]) == {answer.answer_key: 4}
        assert s.answered_prompt_sets() == ["oa"]
        with pytest.raises(ValueError):
            s.add_judge_failure("k", judgment(), "", 3)
        s.add_judge_failure("k", judgment(), "HTTP 500", 3, run_id=7)
        [failure] = s.judge_failures()
        assert (failure.judgment_key, failure.error, failure.attempts, failure.run_id) == ("k", "HTTP 500", 3, 7)
        assert (failure.judge, failure.model_a, failure.model_b) == ("gpt-4", "m1", "m2")


def test_default_prompt_set_is_the_only_set_answered_by_the_given_models(tmp_path: Path) -> None:
    from qlora_eval.errors import ConfigError

    with Store(tmp_path / "s.db") as s:
        with pytest.raises(ConfigError, match="no answers; run `qlora-eval generate`"):
            s.default_prompt_set()
        s.add_answers(
            [
                Answer("a", "hf:a", "vicuna", "1", "h", "x", {}),
                Answer("b", "hf:b", "vicuna", "1", "h", "y", {}),
                Answer("c", "hf:c", "oa", "1", "h", "z", {}),
            ]
        )
        assert s.answered_prompt_sets() == ["oa", "vicuna"]
        assert s.answered_prompt_sets(["a", "b"]) == ["vicuna"]
        assert s.default_prompt_set(["a", "b"]) == "vicuna"
        assert s.default_prompt_set(["c"]) == "oa"
        several = r"answers for several prompt sets \(oa, vicuna\); choose one with --prompts"
        with pytest.raises(ConfigError, match=several):
            s.default_prompt_set()
        with pytest.raises(ConfigError, match="answers of a, c for several prompt sets"):
            s.default_prompt_set(["a", "c"])
        with pytest.raises(ConfigError, match="no answers of nobody"):
            s.default_prompt_set(["nobody"])

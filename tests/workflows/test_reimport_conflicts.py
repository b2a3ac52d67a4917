"""Re-imported data is never silently wrong: other answer texts, other relative scores, renames that flip the
alphabetical order, and our own export of human votes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlora_eval.errors import InputError
from qlora_eval.interchange import ImportOptions, read_inputs
from qlora_eval.interchange.jsonl import write_records
from qlora_eval.store import Store
from qlora_eval.types import Judgment, Order, Verdict
from qlora_eval.workflows.importing import store_imported
from tests.interchange.fixtures import write_jsonl

Q1 = "How can I improve my time management skills?"


def _answers(path: Path, text: str) -> Path:
    return write_jsonl(path, [{"model": "m", "prompt_id": 1, "prompt": Q1, "text": text}])


def test_an_answer_with_another_text_stops_the_import_naming_both_places(tmp_path: Path) -> None:
    first = _answers(tmp_path / "first.jsonl", "old text")
    with Store(tmp_path / "s.db") as store:
        store_imported(store, read_inputs([first], "answers", ImportOptions()))
        changed = _answers(tmp_path / "changed.jsonl", "new text")
        with pytest.raises(InputError, match="another text") as info:
            store_imported(store, read_inputs([changed], "answers", ImportOptions()))
        assert f"{changed}:1" in str(info.value) and "the store" in str(info.value)
        assert [a.text for a in store.answers()] == ["old text"]
        # The same text again is a plain duplicate.
        same = store_imported(store, read_inputs([first], "answers", ImportOptions()))
        assert (same.answers_new, same.answers_duplicate) == (0, 1)


def _baseline(path: Path, answer_id: str, text: str) -> Path:
    return write_jsonl(path, [{"answer_id": answer_id, "model_id": "x", "question_id": 1, "text": text}])


def test_a_changed_generation_never_maps_its_answer_id_onto_the_old_text(tmp_path: Path, shared_data: Path) -> None:
    options = ImportOptions(prompt_set="vicuna", data_dir=shared_data)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    old = _baseline(tmp_path / "a" / "answer_gpt35.jsonl", "id-old", "Plan ahead.")
    new = _baseline(tmp_path / "b" / "answer_gpt35.jsonl", "id-new", "Something else entirely.")
    with Store(tmp_path / "s.db") as store:
        store_imported(store, read_inputs([old], "qlora-generations", options))
        with pytest.raises(InputError, match="another text") as info:
            store_imported(store, read_inputs([new], "qlora-generations", options))
        assert f"{new}:1" in str(info.value)
        assert store.answers_by_id(["id-new"]) == {}  # before the fix: id-new named the old text
        assert [a.text for a in store.answers()] == ["Plan ahead."]


def _relative_setup(tmp_path: Path, shared_data: Path) -> tuple[Store, ImportOptions]:
    options = ImportOptions(prompt_set="vicuna", data_dir=shared_data)
    a = _baseline(tmp_path / "answer_m1.jsonl", "a1", "first answer")
    b = _baseline(tmp_path / "answer_m2.jsonl", "b1", "second answer")
    store = Store(tmp_path / "s.db")
    store_imported(store, read_inputs([a, b], "qlora-generations", options))
    return store, options


def _review(path: Path, score: list[int]) -> Path:
    row = {"question_id": 1, "answer1_id": "a1", "answer2_id": "b1", "score": score, "text": "r"}
    return write_jsonl(path, [row])


def test_relative_reviews_with_other_scores_are_conflicts(tmp_path: Path, shared_data: Path) -> None:
    store, _ = _relative_setup(tmp_path, shared_data)
    with store:
        first = _review(tmp_path / "m1-vs-m2-gpt-4-reviewer.jsonl", [8, 6])
        assert store_imported(store, read_inputs([first], "qlora-relative", ImportOptions())).relative_new == 1
        (tmp_path / "other").mkdir()
        other = _review(tmp_path / "other" / "m1-vs-m2-gpt-4-reviewer.jsonl", [3, 9])
        batch = read_inputs([other], "qlora-relative", ImportOptions())
        with pytest.raises(InputError, match="1 conflicting relative review") as info:
            store_imported(store, batch)  # before the fix: counted as 1 relative_duplicate
        assert f"{other}:1" in str(info.value) and f"{first}:1" in str(info.value)
        assert "--conflicts keep" in str(info.value)
        assert [j.scores for j in store.relative_judgments()] == [(8.0, 6.0)]
        kept = store_imported(store, batch, conflicts="keep")
        assert (kept.relative_new, kept.relative_duplicate) == (1, 0)
        assert sorted(j.scores for j in store.relative_judgments() if j.scores) == [(3.0, 9.0), (8.0, 6.0)]
        # Re-importing either file now adds nothing.
        for path in (first, other):
            again = store_imported(store, read_inputs([path], "qlora-relative", ImportOptions()), conflicts="keep")
            assert (again.relative_new, again.relative_duplicate) == (0, 1)


def test_rename_that_flips_the_alphabetical_order_recomputes_order(tmp_path: Path) -> None:
    # "b-model" < "c-model" (FORWARD) but "z-model" > "c-model": the renamed pair is shown SWAPPED.
    old = Judgment("gpt-4", "b-model", "c-model", "vicuna", "1", Verdict.A, Order.of("b-model", "c-model"))
    path = tmp_path / "old.jsonl"
    with path.open("w", encoding="utf-8") as out:
        write_records([old], out)
    (renamed,) = read_inputs([path], "jsonl", ImportOptions(renames=(("b-model", "z-model"),))).judgments
    direct = Judgment("gpt-4", "z-model", "c-model", "vicuna", "1", Verdict.A, Order.of("z-model", "c-model"))
    assert renamed.order is Order.SWAPPED  # before the fix: FORWARD, from the old names
    assert (renamed.model_a, renamed.model_b, renamed.verdict) == ("z-model", "c-model", Verdict.A)
    assert renamed.judgment_key == direct.judgment_key
    assert renamed.to_battle() == direct.to_battle()


def _web_vote(rater: str, left: str, right: str, verdict: Verdict) -> Judgment:
    """What the web form stores for a first vote (human/round.py vote_judgment): settings {}."""
    return Judgment(f"human:{rater}", left, right, "vicuna", "1", verdict, Order.of(left, right), template_hash="h")


def test_reimporting_our_own_export_of_votes_adds_nothing(tmp_path: Path) -> None:
    arena = tmp_path / "arena.json"
    arena.write_text(
        json.dumps([{"model_a": "x", "model_b": "y", "winner": w, "question_id": 7} for w in ("model_a", "model_b")])
    )
    with Store(tmp_path / "s.db") as store:
        store.add_judgments([_web_vote("alice", "x", "y", Verdict.A), _web_vote("bob", "y", "x", Verdict.TIE)])
        store_imported(store, read_inputs([arena], "arena", ImportOptions()))  # two numbered votes
        before = [s.key for s in store.judgments()]
        assert len(before) == 4
        export = tmp_path / "export.jsonl"
        with export.open("w", encoding="utf-8") as out:
            write_records([s.judgment for s in store.judgments()], out)
        counts = store_imported(store, read_inputs([export], "jsonl", ImportOptions()))
        assert (counts.judgments_new, counts.judgments_duplicate) == (0, 4)  # before the fix: 4 new (doubled)
        assert sorted(s.key for s in store.judgments()) == sorted(before)
    with Store(tmp_path / "copy.db") as copy:
        counts = store_imported(copy, read_inputs([export], "jsonl", ImportOptions()))
        assert counts.judgments_new == 4 and len(copy.judgments()) == 4
        again = store_imported(copy, read_inputs([export], "jsonl", ImportOptions()))
        assert again.judgments_new == 0

"""Runs and benchmark results."""

from __future__ import annotations

from pathlib import Path

from qlora_eval.store import Store


def test_runs_are_recorded_and_finished(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        first = s.start_run("generate", {"models": ["a"]})
        second = s.start_run("judge", {})
        s.finish_run(first, "done", {"answers": 3})
        runs = s.runs()
        assert [r.run_id for r in runs] == [first, second]
        assert (runs[0].command, runs[0].config, runs[0].status, runs[0].summary) == (
            "generate",
            {"models": ["a"]},
            "done",
            {"answers": 3},
        )
        assert runs[0].finished_at is not None
        assert (runs[1].status, runs[1].finished_at, runs[1].summary) == ("running", None, None)
        assert s.counts()["runs"] == 2


def test_results_round_trip_by_kind(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        s.add_result("mmlu", "m1", {"accuracy": 0.5})
        s.add_result("memory", "m1", {"peak_gib": 1.0})
        assert [(k, sub, p) for k, sub, p, _ in s.results("mmlu")] == [("mmlu", "m1", {"accuracy": 0.5})]
        assert len(s.results()) == 2

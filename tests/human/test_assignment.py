"""The assignment rules as pure functions: slots, leases, skips, repeats with sides swapped, progress."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qlora_eval.errors import ConfigError
from qlora_eval.human.assignment import (
    RoundConfig,
    choose,
    lease_cutoff,
    open_tasks,
    pending,
    progress,
    repeat_candidates,
)
from qlora_eval.store import Assignment, Choice, Task, VoteRecord
from qlora_eval.types import Verdict

NOW = "2030-01-01T12:00:00+00:00"
TASKS = {f"t{i}": Task(f"t{i}", "demo", f"p{i}", "alpha", "beta", f"ax{i}", f"ay{i}") for i in range(4)}


def assigned(
    rater: str, task: str, *, repeat: bool = False, voted: bool = False, skipped: bool = False, at: str = NOW
) -> Assignment:
    skipped_at = NOW if skipped else None
    return Assignment(f"{rater}-{task}-{int(repeat)}", rater, task, repeat, "alpha", at, skipped_at, voted)


def voted(rater: str, task: str, *, repeat: bool = False) -> VoteRecord:
    return VoteRecord(f"{rater}-{task}-{int(repeat)}", rater, task, repeat, Choice.LEFT, Verdict.A, None, "", NOW)


def test_slots_are_capped_and_a_skip_or_an_expired_lease_frees_one() -> None:
    config = RoundConfig(raters_per_task=1)
    cutoff = lease_cutoff(60, datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC))
    held = [assigned("a", "t0"), assigned("a", "t1", voted=True), assigned("b", "t2", skipped=True)]
    held.append(assigned("c", "t3", at="2030-01-01T11:00:00+00:00"))  # lease ran out an hour ago
    assert sorted(open_tasks(held, list(TASKS), "z", config, cutoff)) == ["t2", "t3"]
    # A rater never gets a task twice, even one whose slot is free again.
    assert open_tasks(held, list(TASKS), "b", config, cutoff) == ["t3"]


def test_tasks_with_fewest_raters_go_first() -> None:
    config = RoundConfig(raters_per_task=3)
    held = [assigned("a", "t0", voted=True), assigned("b", "t0", voted=True), assigned("c", "t1", voted=True)]
    order = open_tasks(held, list(TASKS), "z", config, NOW)
    assert set(order[:2]) == {"t2", "t3"} and order[2:] == ["t1", "t0"]


def test_repeats_wait_for_the_gap_and_stop_at_the_limit() -> None:
    config = RoundConfig(repeats_per_rater=1, repeat_gap=2)
    mine = [assigned("a", t, voted=True) for t in ("t0", "t1", "t2")]
    votes = [voted("a", t) for t in ("t0", "t1", "t2")]
    # With new tasks left, only votes followed by >= 2 others may come back.
    assert repeat_candidates(mine, votes, TASKS, "a", config, need_gap=True) == ["t0"]
    assert sorted(repeat_candidates(mine, votes, TASKS, "a", config, need_gap=False)) == ["t0", "t1", "t2"]
    done = [*mine, assigned("a", "t0", repeat=True)]
    assert repeat_candidates(done, votes, TASKS, "a", config, need_gap=False) == []


def test_a_repeat_shows_the_sides_swapped() -> None:
    config = RoundConfig(repeats_per_rater=1, repeat_gap=0)
    mine = [assigned("a", "t0", voted=True)]
    pick = choose(mine, [voted("a", "t0")], [], TASKS, "a", config)
    assert pick is not None and (pick.task_id, pick.is_repeat, pick.left_model) == ("t0", True, "beta")
    assert choose([*mine, assigned("a", "t0", repeat=True)], [voted("a", "t0")], [], TASKS, "a", config) is None


def test_pending_and_progress() -> None:
    config = RoundConfig(repeats_per_rater=1)
    mine = [assigned("a", "t0", voted=True), assigned("a", "t1", skipped=True), assigned("a", "t2")]
    assert [a.task_id for a in pending(mine, TASKS)] == ["t2"]
    p = progress(mine, TASKS, n_open=1, config=config)
    # done: t0 voted, t1 skipped; left: t2 pending, one open task, one repeat still to come.
    assert (p.done, p.total) == (2, 2 + 1 + 1 + 1)


def test_round_config_checks_its_values() -> None:
    for bad in ({"raters_per_task": 0}, {"repeats_per_rater": -1}, {"lease_s": 0}, {"repeat_gap": -1}):
        with pytest.raises(ConfigError):
            RoundConfig(**bad)  # type: ignore[arg-type]

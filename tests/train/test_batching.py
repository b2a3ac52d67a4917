"""Step composition: seeded, grouped by length, independent of the process count."""

from __future__ import annotations

import pytest

from qlora_eval.errors import ConfigError
from qlora_eval.train.batching import epoch_order, micro_batches, step_indices, steps_per_epoch


def test_order_is_seeded_and_a_permutation() -> None:
    lengths = list(range(100))
    a = epoch_order(lengths, 4, seed=1, epoch=0, group_by_length=False)
    assert sorted(a) == lengths
    assert a == epoch_order(lengths, 4, seed=1, epoch=0, group_by_length=False)
    assert a != epoch_order(lengths, 4, seed=2, epoch=0, group_by_length=False)
    assert a != epoch_order(lengths, 4, seed=1, epoch=1, group_by_length=False)


def test_group_by_length_sorts_inside_megabatches() -> None:
    lengths = [(i * 37) % 101 for i in range(400)]
    order = epoch_order(lengths, 2, seed=0, epoch=0, group_by_length=True)
    assert sorted(order) == list(range(400))
    for start in range(0, 400, 100):  # megabatch = 50 * 2
        chunk = [lengths[i] for i in order[start : start + 100]]
        assert chunk == sorted(chunk, reverse=True)
    plain = epoch_order(lengths, 2, seed=0, epoch=0, group_by_length=False)
    assert set(order[:100]) == set(plain[:100])  # same examples per megabatch, only reordered


def test_steps_wrap_into_new_epochs() -> None:
    lengths = [1] * 10
    assert steps_per_epoch(10, 4) == 2
    seen = step_indices(lengths, 4, 0, 0, False) + step_indices(lengths, 4, 0, 1, False)
    assert len(set(seen)) == 8
    assert step_indices(lengths, 4, 0, 2, False) == epoch_order(lengths, 4, 0, 1, False)[:4]


def test_too_little_data_is_an_error() -> None:
    with pytest.raises(ConfigError, match="fewer than one effective batch"):
        steps_per_epoch(3, 16)


def test_split_over_processes_covers_the_step_once() -> None:
    step = list(range(8))
    one = micro_batches(step, batch_size=2, grad_accum=4, world_size=1, rank=0)
    two = [micro_batches(step, batch_size=2, grad_accum=2, world_size=2, rank=r) for r in range(2)]
    assert sorted(i for mb in one for i in mb) == step
    assert sorted(i for rank in two for mb in rank for i in mb) == step
    assert two[1][0] == [2, 3]

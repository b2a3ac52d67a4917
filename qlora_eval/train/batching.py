"""Which examples make up each optimizer step, on each process and in each accumulation pass.

The order depends only on the seed, the example lengths and the effective batch, never on the number
of processes: step ``s`` always trains on the same examples, so a resumed run sees exactly the data the
uninterrupted one saw, and 1 process with 2 accumulation passes equals 2 processes with 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qlora_eval.errors import ConfigError

MEGABATCH_FACTOR = 50  # as transformers' LengthGroupedSampler: sort by length inside 50 batches


def steps_per_epoch(num_examples: int, effective_batch: int) -> int:
    """Full optimizer steps in one pass over the data (the incomplete remainder is skipped).

    Raises:
        ConfigError: when the data has fewer examples than one effective batch.
    """
    if num_examples < effective_batch:
        raise ConfigError(
            f"the data has {num_examples} examples, fewer than one effective batch of {effective_batch}; "
            "lower --per-device-batch-size or --grad-accum"
        )
    return num_examples // effective_batch


def epoch_order(
    lengths: Sequence[int], effective_batch: int, seed: int, epoch: int, group_by_length: bool, *, shuffle: bool = True
) -> list[int]:
    """The example order of one epoch.

    A seeded shuffle (file order with ``shuffle=False``); with ``group_by_length``, each run of
    ``50 * effective_batch`` examples is then sorted longest first, so batches hold similar lengths
    (less padding) while the order stays random.
    """
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(len(lengths)).tolist()
    else:
        order = list(range(len(lengths)))
    if not group_by_length:
        return order
    size = MEGABATCH_FACTOR * effective_batch
    grouped: list[int] = []
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        grouped.extend(sorted(chunk, key=lambda i: (-lengths[i], i)))
    return grouped


def step_indices(
    lengths: Sequence[int], effective_batch: int, seed: int, step: int, group_by_length: bool
) -> list[int]:
    """The examples of optimizer step ``step`` (0-based), over all processes and passes."""
    per_epoch = steps_per_epoch(len(lengths), effective_batch)
    epoch, within = divmod(step, per_epoch)
    order = epoch_order(lengths, effective_batch, seed, epoch, group_by_length)
    return order[within * effective_batch : (within + 1) * effective_batch]


def micro_batches(
    step_examples: Sequence[int], batch_size: int, grad_accum: int, world_size: int, rank: int
) -> list[list[int]]:
    """This process's forward passes of one step: pass ``m`` of rank ``r`` takes chunk ``m * world + r``."""
    out = []
    for m in range(grad_accum):
        k = m * world_size + rank
        out.append(list(step_examples[k * batch_size : (k + 1) * batch_size]))
    return out

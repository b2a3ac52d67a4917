"""How many torch threads a CPU run (training, generation, a local judge, MMLU) uses.

On a small shared CPU, OpenMP threads that outnumber the idle cores wait for one another at every
parallel region: measured on the 2-core CI machine with two other busy processes, one SmolLM2 QLoRA
pass of 256 tokens took 31-34 s with torch's default 2 threads and 6-7 s with 1 thread. So a CPU run
uses as many threads as the cores left idle by the rest of the machine (by the 1-minute load average),
at least one and never more than torch's own default (which honours ``OMP_NUM_THREADS``). Generation
stalls the same way: SmolLM2 answering 12 prompts under load 12 made no progress in 15 minutes with 2
threads and finished in about 2 minutes with one.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count of a CPU run and why (written to ``training.json`` and to generate/judge run records)."""

    threads: int
    reason: str

    def to_dict(self) -> dict[str, int | str]:
        return {"threads": self.threads, "reason": self.reason}


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def choose_cpu_threads(requested: int | None, torch_default: int, cores: int, load_average: float) -> ThreadChoice:
    """The torch thread count for a CPU run.

    Args:
        requested: an explicit count (``TrainConfig.cpu_threads``), used as given.
        torch_default: ``torch.get_num_threads()`` before the run.
        cores: usable cores.
        load_average: the machine's 1-minute load average (runnable processes).

    Returns:
        The count and a sentence saying how it was chosen.
    """
    if requested is not None:
        return ThreadChoice(requested, f"set by cpu_threads={requested}")
    idle = round(cores - load_average)
    threads = max(1, min(torch_default, idle))
    return ThreadChoice(
        threads,
        f"{threads} of {cores} cores: load average {load_average:.2f} leaves {max(idle, 0)} idle, "
        f"torch default {torch_default} (oversubscribed OpenMP threads are several times slower)",
    )


def current_choice(requested: int | None) -> ThreadChoice:
    """``choose_cpu_threads`` for this process and machine now."""
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return choose_cpu_threads(requested, torch.get_num_threads(), usable_cores(), load)


def use_cpu_threads(requested: int | None = None) -> ThreadChoice:
    """Choose the thread count now (:func:`current_choice`), set it in torch for this process, and log it."""
    import torch

    choice = current_choice(requested)
    torch.set_num_threads(choice.threads)
    log.info("torch threads: %s", choice.reason)
    return choice

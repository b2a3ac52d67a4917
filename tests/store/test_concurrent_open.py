"""Several processes opening a new store at the same moment: exactly one creates the schema, none fails.

Before issue 14 the check-and-migrate ran outside the write lock, so two first opens both saw version 0 and
the second failed with "table schema_version already exists" (4 of 5 trials with four ``raters list``).
"""

from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path
from typing import Any

PROCESSES = 6
TRIALS = 8


def _open_many(paths: list[str], barrier: Any, results: Any) -> None:
    from qlora_eval.store import Store

    for path in paths:
        barrier.wait(timeout=60)  # every process opens the same new file at once
        try:
            with Store(path) as store:
                results.put(("ok", store.schema_version()))
        except BaseException:
            results.put(("error", traceback.format_exc()))


def test_concurrent_first_opens_all_succeed(tmp_path: Path) -> None:
    from qlora_eval.store import Store, latest_version

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    paths = [str(tmp_path / f"new-{i}.db") for i in range(TRIALS)]
    procs = [ctx.Process(target=_open_many, args=(paths, barrier, results)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in range(PROCESSES * TRIALS)]
    for p in procs:
        p.join(timeout=60)
    errors = [detail for kind, detail in outcomes if kind == "error"]
    assert not errors, errors[0]
    assert {detail for _, detail in outcomes} == {latest_version()}
    for path in paths:
        with Store(path) as store:
            assert store.schema_version() == latest_version()

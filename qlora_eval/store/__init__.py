"""The SQLite store (L2): one file per workspace holding prompts, answers, judgments, raters and runs.

This package is the only place in qlora-eval with SQL. Callers use the typed methods of ``Store``
(which return dataclasses); no connection or query leaves the package. Modules:

* ``schema``: versioned migrations (append-only tables enforced by triggers);
* ``core``: opening (WAL, busy timeout, migration on open), the lock, ``atomic()`` transactions;
* ``records``: prompts, models, answers, judgments, judge failures;
* ``runs``: runs and benchmark results;
* ``batches``: Batch API submissions and the judgment keys they hold in flight;
* ``human``: raters, the admin token, rating tasks, assignments and votes;
* ``verdicts``: stored judgments by key (imports tell duplicates from conflicting verdicts).

The store is safe to share between threads of one process (one connection behind a lock).
"""

from __future__ import annotations

from qlora_eval.store.batches import BatchesMixin, BatchItem, BatchSubmission, SubmissionState
from qlora_eval.store.core import DEFAULT_DB
from qlora_eval.store.human import (
    ADMIN_NAME,
    HUMAN_JUDGE_PREFIX,
    Assignment,
    Choice,
    HumanMixin,
    Rater,
    Task,
    VoteRecord,
)
from qlora_eval.store.records import JudgeFailure, RecordsMixin, StoredJudgment, StoredPrompt
from qlora_eval.store.relative import AnswerRef, RelativeMixin
from qlora_eval.store.runs import RunRecord, RunsMixin
from qlora_eval.store.schema import MIGRATIONS, latest_version
from qlora_eval.store.verdicts import VerdictsMixin


class Store(RecordsMixin, RunsMixin, HumanMixin, RelativeMixin, BatchesMixin, VerdictsMixin):
    """A handle on one SQLite store file.

    Use as a context manager, or call ``close()``::

        with Store("qlora-eval.db") as store:
            new = store.add_judgments(judgments)
    """


__all__ = [
    "ADMIN_NAME",
    "DEFAULT_DB",
    "HUMAN_JUDGE_PREFIX",
    "MIGRATIONS",
    "AnswerRef",
    "Assignment",
    "BatchItem",
    "BatchSubmission",
    "Choice",
    "JudgeFailure",
    "Rater",
    "RunRecord",
    "Store",
    "StoredJudgment",
    "StoredPrompt",
    "SubmissionState",
    "Task",
    "VoteRecord",
    "latest_version",
]

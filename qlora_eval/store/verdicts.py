"""Looking up stored judgments by content key (for imports: duplicates vs conflicting verdicts)."""

from __future__ import annotations

from collections.abc import Iterable

from qlora_eval.store.core import StoreCore
from qlora_eval.store.records import StoredJudgment, _judgment_from_row

#: SQLite's default limit on host parameters is 999 on old builds: look keys up in chunks below it.
_CHUNK = 500


class VerdictsMixin(StoreCore):
    """``judgments_by_key``: the stored judgments with given keys."""

    def judgments_by_key(self, keys: Iterable[str]) -> dict[str, StoredJudgment]:
        """Key -> the stored judgment, for the keys that are stored."""
        wanted = sorted(set(keys))
        found: dict[str, StoredJudgment] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows = self._rows(f"SELECT * FROM judgments WHERE judgment_key IN ({','.join('?' * len(chunk))})", chunk)
            for row in rows:
                found[row["judgment_key"]] = StoredJudgment(row["judgment_key"], _judgment_from_row(row), row["run_id"])
        return found

"""Looking up stored records by content key (for imports: duplicates vs conflicting verdicts, scores or texts)."""

from __future__ import annotations

from collections.abc import Iterable

from qlora_eval.store.core import StoreCore
from qlora_eval.store.records import StoredJudgment, _judgment_from_row
from qlora_eval.store.relative import _relative_from_row
from qlora_eval.types import RelativeJudgment

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

    def relative_by_key(self, keys: Iterable[str]) -> dict[str, tuple[RelativeJudgment, int | None]]:
        """Key -> (the stored relative judgment, its run id), for the keys that are stored."""
        found: dict[str, tuple[RelativeJudgment, int | None]] = {}
        for chunk in _chunks(keys):
            sql = f"SELECT * FROM relative_judgments WHERE judgment_key IN ({','.join('?' * len(chunk))})"
            for row in self._rows(sql, chunk):
                found[row["judgment_key"]] = (_relative_from_row(row), row["run_id"])
        return found

    def answer_texts(self, answer_keys: Iterable[str]) -> dict[str, str]:
        """Answer key -> the stored answer's text, for the keys that are stored."""
        found: dict[str, str] = {}
        for chunk in _chunks(answer_keys):
            sql = f"SELECT answer_key, text FROM answers WHERE answer_key IN ({','.join('?' * len(chunk))})"
            found.update((row[0], row[1]) for row in self._rows(sql, chunk))
        return found


def _chunks(keys: Iterable[str]) -> list[list[str]]:
    wanted = sorted(set(keys))
    return [wanted[start : start + _CHUNK] for start in range(0, len(wanted), _CHUNK)]

"""Raters and tokens: names checked, tokens stored hashed, revoke and rotate make old tokens useless."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlora_eval.errors import InputError
from qlora_eval.human import raters as r
from qlora_eval.store import Store


def test_rater_tokens_work_until_replaced_or_revoked(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        token = r.add_rater(s, "alice")
        who = r.rater_for_token(s, token)
        assert who is not None and (who.name, who.is_admin, who.judge) == ("alice", False, "human:alice")
        with pytest.raises(InputError, match="already exists"):
            r.add_rater(s, "alice")
        new = r.new_rater_token(s, "alice")
        assert r.rater_for_token(s, token) is None and r.rater_for_token(s, new) is not None
        assert r.active_rater_count(s) == 1
        r.revoke_rater(s, "alice")
        assert r.rater_for_token(s, new) is None and r.active_rater_count(s) == 0
        assert [x.name for x in r.list_raters(s)] == ["alice"]
        with pytest.raises(InputError, match="no active rater"):
            r.revoke_rater(s, "alice")
        with pytest.raises(InputError, match="no active rater"):
            r.new_rater_token(s, "bob")
        assert r.rater_for_token(s, "") is None


@pytest.mark.parametrize("name", ["", "admin", "-x", "a b", "x" * 65])
def test_bad_rater_names_are_refused(tmp_path: Path, name: str) -> None:
    with Store(tmp_path / "s.db") as s, pytest.raises(InputError):
        r.add_rater(s, name)


def test_admin_token_is_made_once_and_rotated(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as s:
        first = r.ensure_admin(s)
        assert first is not None and r.ensure_admin(s) is None
        admin = r.rater_for_token(s, first)
        assert admin is not None and admin.is_admin
        second = r.rotate_admin(s)
        assert r.rater_for_token(s, first) is None and r.rater_for_token(s, second) is not None
        assert r.list_raters(s) == []  # the admin row is not a rater

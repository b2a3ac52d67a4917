"""``qlora-eval raters`` and the admin token of ``serve``."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlora_eval.cli.main import main
from qlora_eval.human.raters import hash_token, rater_for_token
from qlora_eval.store import Store
from tests.web.helpers import query


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.strip().splitlines()


def test_raters_add_list_revoke_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "r.db")
    assert main(["raters", "add", "alice", "--db", db, "--host", "10.0.0.5", "--port", "9000"]) == 0
    out = lines(capsys)
    token = out[-1]
    assert out[-2] == f"http://10.0.0.5:9000/rate?token={token}"
    assert len(token) >= 40
    with Store(db) as s:
        who = rater_for_token(s, token)
        assert who is not None and who.judge == "human:alice"
        assert query(db, "SELECT token_hash FROM raters")[0][0] == hash_token(token)

    assert main(["raters", "add", "alice", "--db", db]) == 2  # duplicate name
    assert "already exists" in capsys.readouterr().err
    assert main(["raters", "add", "admin", "--db", db]) == 2  # reserved
    assert main(["raters", "add", "bad name", "--db", db]) == 2
    capsys.readouterr()

    assert main(["raters", "list", "--db", db]) == 0
    listed = lines(capsys)
    assert len(listed) == 1 and listed[0].startswith("alice") and "active" in listed[0]

    assert main(["raters", "token", "alice", "--db", db]) == 0
    new = lines(capsys)[-1]
    assert new != token
    assert main(["raters", "revoke", "alice", "--db", db]) == 0
    assert main(["raters", "revoke", "alice", "--db", db]) == 2  # already revoked
    capsys.readouterr()
    with Store(db) as s:
        assert rater_for_token(s, token) is None and rater_for_token(s, new) is None
    assert main(["raters", "list", "--db", db]) == 0
    assert "revoked" in lines(capsys)[0]


def test_admin_token_is_made_once_and_rotated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qlora_eval.human.raters import ensure_admin

    db = tmp_path / "a.db"
    with Store(db) as s:
        first = ensure_admin(s)
        assert first is not None and ensure_admin(s) is None
    assert main(["raters", "rotate-admin", "--db", str(db)]) == 0
    out = lines(capsys)
    rotated = out[-1]
    assert out[-2].endswith(f"/admin?token={rotated}")
    with Store(db) as s:
        assert rater_for_token(s, first) is None
        who = rater_for_token(s, rotated)
        assert who is not None and who.is_admin

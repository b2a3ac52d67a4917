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
    assert main(["raters", "add", "alice", "--db", db, "--create", "--host", "10.0.0.5", "--port", "9000"]) == 0
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


def test_a_mistyped_db_is_refused_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "typo.db"
    for argv in (
        ["raters", "list"],
        ["raters", "revoke", "alice"],
        ["raters", "token", "alice"],
        ["raters", "restore", "alice"],
        ["raters", "add", "alice"],
        ["raters", "rotate-admin"],
        ["serve"],
    ):
        assert main([*argv, "--db", str(missing)]) == 2, argv
        err = capsys.readouterr().err
        assert f"no store at --db {missing}" in err, (argv, err)
        assert ("--create" in err) == (argv[1:2] in (["add"], ["rotate-admin"])), (argv, err)
        assert not missing.exists(), argv  # nothing was created
    assert main(["raters", "add", "alice", "--db", str(missing), "--create"]) == 0
    assert missing.exists()


def test_a_revoked_rater_is_restored_with_a_new_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.db"
    Store(db).close()
    assert main(["raters", "add", "alice", "--db", str(db)]) == 0
    old = lines(capsys)[-1]
    assert main(["raters", "restore", "alice", "--db", str(db)]) == 2  # still active
    assert "raters token alice" in capsys.readouterr().err
    assert main(["raters", "revoke", "alice", "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["raters", "token", "alice", "--db", str(db)]) == 2
    assert "raters restore alice" in capsys.readouterr().err
    assert main(["raters", "add", "alice", "--db", str(db)]) == 2
    assert "raters restore alice" in capsys.readouterr().err
    assert main(["raters", "restore", "alice", "--db", str(db), "--port", "9000"]) == 0
    out = lines(capsys)
    new = out[-1]
    assert out[-2] == f"http://127.0.0.1:9000/rate?token={new}"
    with Store(db) as s:
        who = rater_for_token(s, new)
        assert who is not None and who.name == "alice" and who.revoked_at is None
        assert rater_for_token(s, old) is None  # the revoked token stays dead
    assert main(["raters", "list", "--db", str(db)]) == 0
    assert "active" in lines(capsys)[0]
    assert main(["raters", "restore", "bob", "--db", str(db)]) == 2
    assert "no revoked rater named 'bob'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--port", "99999", "out of range"),
        ("--port", "0", "out of range"),
        ("--port", "http", "not a port"),
        ("--host", "bad host!", "not a host"),
        ("--host", "exa_mple..org", "not a host"),
    ],
)
def test_serve_and_raters_validate_host_and_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, says: str
) -> None:
    from tests.web.helpers import seed_store

    db = tmp_path / "s.db"
    seed_store(db, models=("alpha", "beta"), n_prompts=1)
    for argv in (["serve"], ["raters", "add", "zed"]):
        with pytest.raises(SystemExit) as exit_:
            main([*argv, "--db", str(db), flag, value])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err


def test_serve_on_a_port_in_use_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from tests.web.helpers import seed_store

    db = tmp_path / "s.db"
    seed_store(db, models=("alpha", "beta"), n_prompts=1)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--db", str(db), "--host", "127.0.0.1", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err


def test_links_for_a_server_behind_tls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.db"
    argv = ["raters", "add", "tia", "--db", str(db), "--create", "--host", "rating.example.org", "--port", "443"]
    assert main([*argv, "--https"]) == 0
    out = lines(capsys)
    assert out[-2] == f"https://rating.example.org/rate?token={out[-1]}"
    assert main(["raters", "rotate-admin", "--db", str(db), "--host", "::1", "--port", "8443", "--https"]) == 0
    out = lines(capsys)
    assert out[-2] == f"https://[::1]:8443/admin?token={out[-1]}"

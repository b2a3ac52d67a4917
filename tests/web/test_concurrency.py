"""Many raters voting at once through real HTTP: no vote lost, none stored twice; ``serve`` end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from qlora_eval.store import Store
from qlora_eval.web.app import create_app
from tests.web.helpers import ServerThread, bearer, free_port, new_rater, query, seed_store

pytestmark = pytest.mark.network


def test_eight_raters_at_once(tmp_path: Path) -> None:
    db = tmp_path / "busy.db"
    seed_store(db, n_prompts=6)  # 6 prompts x 3 pairs = 18 tasks
    names = [f"r{i}" for i in range(8)]
    tokens = {n: new_rater(db, n) for n in names}
    app = create_app(db, raters_per_task=3, repeats_per_rater=2)

    def rater(name: str) -> tuple[int, int]:
        """Vote through every task; each vote is sent twice at the same moment."""
        created = conflicts = 0
        with httpx.Client(base_url=server.url, headers=bearer(tokens[name]), timeout=30) as client:
            for _ in range(100):
                r = client.get("/api/next")
                if r.status_code == 204:
                    return created, conflicts
                assert r.status_code == 200, r.text
                body = {"assignment_id": r.json()["assignment_id"], "choice": ["left", "right", "tie"][created % 3]}
                with ThreadPoolExecutor(2) as pair:
                    statuses = sorted(pair.map(lambda b: client.post("/api/votes", json=b).status_code, [body, body]))
                assert statuses == [201, 409], statuses
                created += 1
                conflicts += 1
        raise AssertionError(f"{name} never finished")

    with ServerThread(app) as server, ThreadPoolExecutor(len(names)) as pool:
        results = dict(zip(names, pool.map(rater, names), strict=True))

    with Store(db) as s:
        judgments = s.judgments()
        votes = query(db, "SELECT rater, task_id, is_repeat, judgment_key FROM web_votes")
    assert len(judgments) == 18 * 3  # every task rated by exactly raters_per_task raters
    per_task = Counter((j.judgment.prompt_id, *sorted((j.judgment.model_a, j.judgment.model_b))) for j in judgments)
    assert set(per_task.values()) == {3}
    assert len({(j.judgment.judge, *per_task_key(j)) for j in judgments}) == len(judgments)  # no rater twice
    firsts = [v for v in votes if not v["is_repeat"]]
    assert {v["judgment_key"] for v in firsts} == {j.key for j in judgments}
    repeats = Counter(v["rater"] for v in votes if v["is_repeat"])
    assert all(repeats[n] == 2 for n in names)
    assert sum(created for created, _ in results.values()) == len(votes) == 54 + 16


def per_task_key(j: object) -> tuple[str, str, str]:
    judgment = j.judgment  # type: ignore[attr-defined]
    return (judgment.prompt_id, *sorted((judgment.model_a, judgment.model_b)))


def test_serve_command_prints_the_admin_link_and_serves(tmp_path: Path) -> None:
    db = tmp_path / "serve.db"
    seed_store(db, models=("alpha", "beta"), n_prompts=2)
    port = free_port()
    cmd = [sys.executable, "-m", "qlora_eval", "serve", "--db", str(db), "--port", str(port), "--raters-per-task", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        out: list[str] = []
        assert proc.stdout is not None
        while not any(line.startswith("serving on") for line in out):
            line = proc.stdout.readline()
            assert line, "serve exited early:\n" + "".join(out)
            out.append(line)
        admin = next(line.split(": ", 1)[1].strip() for line in out if line.startswith("admin token:"))
        assert any(f"/admin?token={admin}" in line for line in out)
        assert any("2 tasks" in line for line in out)
        for _ in range(100):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/admin", headers=bearer(admin))
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert r.status_code == 200 and "alpha vs beta" in r.text
        token = new_rater(db, "late")  # raters can be added while the server runs
        assert httpx.get(f"http://127.0.0.1:{port}/api/next", headers=bearer(token)).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    second = subprocess.run(
        [*cmd[:-4], "--port", "1", "--models", "alpha", "nope"], capture_output=True, text=True, env=env, timeout=60
    )
    assert second.returncode == 2 and "nope" in second.stderr

"""``qlora-eval judge --batch`` / ``--batch-status`` end to end, including a SIGKILL while the batch is created."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from qlora_eval.cli.main import main
from qlora_eval.store import Store, SubmissionState
from tests.judge.conftest import MODELS, fill_store
from tests.judge.fake_batch_server import BatchBehaviour, FakeBatchServer
from tests.judge.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]


def _args(db: Path, fake: FakeBatchServer, *extra: str) -> list[str]:
    judge = f"openai:gpt-4o?base_url={fake.base_url}"
    return ["judge", "--db", str(db), "--models", *MODELS, "--judge", judge, "--no-progress", "--batch", *extra]


def test_submit_poll_collect_then_nothing_left(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    with FakeBatchServer([BatchBehaviour(polls_in_progress=1)]) as fake:
        assert main(_args(db, fake, "--json", str(out))) == 1  # submitted, not complete yet
        first = json.loads(out.read_text())
        assert (first["submitted_requests"], first["in_flight"], first["judgments"]) == (18, 18, 0)
        assert main(["judge", "--db", str(db), "--batch-status", "--json", str(out)]) == 0
        assert json.loads(out.read_text())["pending_batches"][0]["status"] == "in_progress"
        assert main(["judge", "--db", str(db), "--batch-status", "--json", str(out)]) == 0
        polled = json.loads(out.read_text())
        assert (polled["collected_batches"], polled["new"], polled["in_flight"]) == (1, 18, 0)
        assert main(_args(db, fake, "--json", str(out))) == 0
        done = json.loads(out.read_text())
        assert (done["judgments"], done["planned"], done["submitted_requests"]) == (18, 18, 0)
    assert len(fake.submitted) == 18 and fake.duplicates() == []


def test_dry_run_prices_the_batch_at_half(db: Path, tmp_path: Path) -> None:
    figures = {}
    with FakeBatchServer() as fake:
        for mode in ("sync", "batch"):
            out = tmp_path / f"{mode}.json"
            args = _args(db, fake, "--dry-run", "--json", str(out))
            if mode == "sync":
                args.remove("--batch")
            assert main(args) == 0
            figures[mode] = json.loads(out.read_text())
        assert fake.calls == {}  # a dry run calls nothing
    assert figures["batch"]["batch"] is True and figures["batch"]["calls"] == 18
    assert figures["batch"]["estimated_cost_usd"] == pytest.approx(figures["sync"]["estimated_cost_usd"] / 2, rel=1e-4)


def test_batch_with_a_local_judge_is_refused(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["judge", "--db", str(db), "--models", *MODELS, "--judge", "local:smollm2-135m", "--batch"])
    assert code == 2
    assert "--batch works with openai: judges" in capsys.readouterr().err


def test_models_are_required_without_batch_status(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["judge", "--db", str(db)]) == 2
    assert "--models" in capsys.readouterr().err


def test_sigkill_while_the_batch_is_created_never_submits_twice(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    fill_store(db)
    # The server creates the batch 1.5 s after the request arrives; the client is killed before it answers.
    with FakeBatchServer(create_delay_s=1.5) as fake:
        cmd = [sys.executable, "-m", "qlora_eval", *_args(db, fake)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while fake.calls.get("POST /batches", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with Store(db) as store:
            assert [s.state for s in store.batch_submissions()] == [SubmissionState.UPLOADED]
        while not fake.submitted and time.monotonic() < deadline:  # the server still creates it
            time.sleep(0.02)
        fake.create_delay_s = 0.0
        rerun = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert "found after a crash" in rerun.stdout, rerun.stdout + rerun.stderr
        status = subprocess.run(
            [sys.executable, "-m", "qlora_eval", "judge", "--db", str(db), "--batch-status"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert status.returncode == 0, status.stderr
        final = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stdout + final.stderr
    assert fake.calls["POST /batches"] == 1 and len(fake.submitted) == 18 and fake.duplicates() == []
    with Store(db) as store:
        rows = Counter(s.key for s in store.judgments())
    assert len(rows) == 18


def test_tournament_yaml_batch_flag_reaches_the_judge_options(tmp_path: Path) -> None:
    from qlora_eval.config import load_tournament_config
    from qlora_eval.errors import ConfigError
    from qlora_eval.workflows.tournament import judge_options

    path = tmp_path / "t.yaml"
    base = "models: [dummy:a, dummy:b]\njudge: {spec: openai:gpt-4o, batch: %s}\n"
    path.write_text(base % "true")
    config = load_tournament_config(path)
    assert config.judge.batch and judge_options(config).batch
    path.write_text(base % "'yes'")
    with pytest.raises(ConfigError, match=r"judge\.batch"):
        load_tournament_config(path)


def test_batch_with_relative_protocol_is_refused(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["judge", "--db", str(db), "--models", *MODELS, "--judge", "openai:gpt-4o?base_url=http://127.0.0.1:9/v1"]
    assert main([*args, "--batch", "--protocol", "relative", "--reference", "alpha"]) == 2
    assert "--protocol pairwise only" in capsys.readouterr().err


def test_first_batch_tournament_run_waits_then_the_next_one_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "local")  # the contestants answer from a local fake server
    config = tmp_path / "t.yaml"
    out = tmp_path / "out"
    with (
        FakeOpenAI(reply=lambda body: "an answer") as answers,
        FakeBatchServer([BatchBehaviour(polls_in_progress=1)]) as fake,
    ):
        contestants = [f"openai:m?base_url={answers.base_url}&name={n}" for n in ("a", "b")]
        config.write_text(
            f"models: {json.dumps(contestants)}\n"
            "prompts: {name: demo, limit: 2}\n"
            f"judge: {{spec: 'openai:gpt-4o?base_url={fake.base_url}', batch: true}}\n"
            f"db: {tmp_path / 't.db'}\nhtml: {out / 't.html'}\njson: {out / 't.json'}\nrounds: 20\n"
        )
        args = ["tournament", "--config", str(config), "--no-progress"]
        # every judgment is in flight: nothing to rate yet, which is not an error (it was exit 2 before)
        assert main(args) == 0
        err = capsys.readouterr().err
        assert "4 judgments are in Batch API batches and none is back yet" in err
        assert f"qlora-eval judge --db {tmp_path / 't.db'} --batch-status" in err
        assert not (out / "t.json").exists()
        with Store(tmp_path / "t.db") as store:
            assert [r.status for r in store.runs() if r.command == "tournament"] == ["waiting"]
        assert main(args) == 0  # the batch is still in progress at this poll
        assert "are in Batch API batches" in capsys.readouterr().err
        assert main(args) == 0  # ended now: collected, rated, written
        document = json.loads((out / "t.json").read_text())
        assert document["judging"]["judgments"] == 4
    assert len(fake.submitted) == 4 and fake.duplicates() == []

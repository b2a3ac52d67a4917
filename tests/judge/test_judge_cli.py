"""``qlora-eval judge`` end to end against the fake server: JSON figures, dry run, budget, resume after SIGKILL."""

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
from qlora_eval.store import Store
from tests.judge.conftest import MODELS, fill_store
from tests.judge.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]


def _args(db: Path, fake: FakeOpenAI, *extra: str) -> list[str]:
    return [
        "judge",
        "--db",
        str(db),
        "--models",
        *MODELS,
        "--judge",
        f"openai:fake-judge?base_url={fake.base_url}",
        "--no-progress",
        *extra,
    ]


def test_json_figures_and_rerun(db: Path, fake: FakeOpenAI, tmp_path: Path) -> None:
    out = tmp_path / "j.json"
    fake.schedule = [("unparsable", "no idea"), ("unparsable", "still none")]
    assert main(_args(db, fake, "--json", str(out), "--concurrency", "1")) == 0  # serial: the schedule is ordered
    figures = json.loads(out.read_text())
    assert figures["judgments"] == 18 and figures["new"] == 18 and figures["invalid"] == 1
    assert figures["requests"] == 19 == fake.calls and figures["cost_usd"] == 0.0
    assert main(_args(db, fake, "--json", str(out))) == 0
    figures = json.loads(out.read_text())
    assert figures == {**figures, "judgments": 18, "new": 0, "invalid": 0, "requests": 0}
    assert fake.calls == 19


def test_dry_run_spends_nothing(db: Path, fake: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  fake-judge: {input_per_mtok: 10, output_per_mtok: 30}\n")
    out = tmp_path / "dry.json"
    code = main(_args(db, fake, "--dry-run", "--prices", str(prices), "--max-tokens", "100", "--json", str(out)))
    assert code == 0 and fake.calls == 0
    text = capsys.readouterr().out
    assert "18 calls to make" in text and "estimated cost: $" in text
    figures = json.loads(out.read_text())
    assert figures["calls"] == 18 and figures["max_completion_tokens"] == 1800
    expected = (figures["estimated_prompt_tokens"] * 10 + 1800 * 30) / 1e6
    assert figures["estimated_cost_usd"] == pytest.approx(expected, rel=1e-6)
    with Store(db) as store:
        assert store.counts()["judgments"] == 0


def test_budget_without_price_is_refused(db: Path, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args(db, fake, "--budget-usd", "1")) == 2
    assert "--prices FILE" in capsys.readouterr().err and fake.calls == 0


def test_budget_stop_exits_1_and_reports(db: Path, fake: FakeOpenAI, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  fake-judge: {input_per_mtok: 1000, output_per_mtok: 1000}\n")
    out = tmp_path / "j.json"
    code = main(_args(db, fake, "--prices", str(prices), "--budget-usd", "3", "--concurrency", "1", "--json", str(out)))
    figures = json.loads(out.read_text())
    assert code == 1 and figures["stopped_by_budget"] and 0 < figures["new"] < 18
    assert figures["requests"] == fake.calls == figures["new"] and figures["cost_usd"] <= 3


@pytest.mark.slow
def test_resume_after_sigkill_pays_only_for_what_is_missing(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    fill_store(db, n_prompts=4)  # 3 pairs x 4 prompts x 2 orders = 24 judgments
    concurrency = 3
    with FakeOpenAI(delay_s=0.4) as fake:
        cmd = [sys.executable, "-m", "qlora_eval", *_args(db, fake, "--concurrency", str(concurrency))]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while fake.calls < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        calls_at_kill = fake.calls
        with Store(db) as store:
            stored_at_kill = store.counts()["judgments"]
        assert 0 < stored_at_kill < 24 and calls_at_kill >= 8
        fake.delay_s = 0.0
        rerun = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        # the rerun paid for the missing judgments only; at most the calls in flight at the kill were lost
        assert fake.calls - calls_at_kill == 24 - stored_at_kill
        assert fake.calls <= 24 + concurrency
    with Store(db) as store:
        rows = Counter(
            (j.judgment.prompt_id, j.judgment.model_a, j.judgment.model_b, j.judgment.order) for j in store.judgments()
        )
        assert len(rows) == 24 and all(n == 1 for n in rows.values())

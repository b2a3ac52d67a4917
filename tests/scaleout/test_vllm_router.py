"""vllm-router (vLLM's Rust load balancer, PyPI ``vllm-router``) in front of two OpenAI-compatible workers.

A generation run and a judge run go through the router with our ``openai:`` spec pointing at it; one worker
fails every third request. Every answer and every judgment must be stored exactly once, and the workers
must have done exactly that much successful work (no result computed twice, none lost). The test prints
how the requests were spread over the workers.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from qlora_eval.cli.main import main
from qlora_eval.store import Store
from tests.scaleout.fake_worker import FakeWorker

pytestmark = [pytest.mark.slow, pytest.mark.network]

N_PROMPTS = 12


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_router(worker_urls: list[str], log_path: Path, *extra: str) -> Iterator[tuple[str, str]]:
    """vllm-router on 127.0.0.1 in front of ``worker_urls``; yields (its /v1 URL, its metrics URL)."""
    exe = shutil.which("vllm-router")
    if exe is None:
        pytest.skip("vllm-router is not installed: pip install 'qlora-eval[router]'")
    port, metrics_port = _free_port(), _free_port()
    cmd = [
        exe,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--worker-urls", *worker_urls,
        "--policy", "round_robin",
        "--prometheus-host", "127.0.0.1",
        "--prometheus-port", str(metrics_port),
        *extra,
    ]  # fmt: skip
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                        if reply.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"vllm-router did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.2)
            yield f"{url}/v1", f"http://127.0.0.1:{metrics_port}/metrics"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def requests_per_worker(metrics_url: str) -> dict[str, int]:
    """The router's own count of requests it sent to each worker (its Prometheus metrics)."""
    with urllib.request.urlopen(metrics_url, timeout=5) as reply:
        text = reply.read().decode()
    found = re.findall(r'vllm_router_processed_requests_total\{worker="([^"]+)"\} (\d+)', text)
    return {worker: int(n) for worker, n in found}


@pytest.fixture(params=["router-retries", "client-retries"])
def router(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, FakeWorker, FakeWorker, str]]:
    """The router in front of two fake workers; with ``client-retries`` it passes failures through."""
    extra = ["--disable-retries"] if request.param == "client-retries" else []
    with (
        FakeWorker("w1") as healthy,
        FakeWorker("w2", fail_every=3) as flaky,
        running_router([healthy.url, flaky.url], tmp_path / "router.log", *extra) as (url, _),
    ):
        yield url, healthy, flaky, request.param


def test_generation_and_judging_through_vllm_router_store_each_result_once(
    router: tuple[str, FakeWorker, FakeWorker, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base_url, healthy, flaky, mode = router
    monkeypatch.setenv("OPENAI_API_KEY", "local")
    prompts = tmp_path / "routed.jsonl"
    prompts.write_text("".join(json.dumps({"question": f"Question {i}: why?"}) + "\n" for i in range(N_PROMPTS)))
    db = tmp_path / "r.db"
    models = [f"openai:model-{m}?base_url={base_url}&name=routed-{m}" for m in ("a", "b")]
    args = ["generate", "--models", *models, "--prompts", str(prompts), "--prompt-field", "question"]
    assert main([*args, "--db", str(db), "--no-progress"]) == 0, capsys.readouterr()
    after_generation = (healthy.ok, flaky.ok, healthy.failed, flaky.failed)
    judge = f"openai:router-judge?base_url={base_url}"
    out = tmp_path / "judge.json"
    cmd = ["judge", "--db", str(db), "--models", "routed-a", "routed-b", "--judge", judge, "--no-progress"]
    assert main([*cmd, "--json", str(out), "--max-attempts", "4"]) == 0, capsys.readouterr()
    with Store(db) as store:
        answers = Counter((a.model, a.prompt_id) for a in store.answers())
        judgments = Counter(s.key for s in store.judgments())
        failures = store.judge_failures()
    assert len(answers) == 2 * N_PROMPTS and set(answers.values()) == {1}
    assert len(judgments) == 2 * N_PROMPTS and set(judgments.values()) == {1}
    assert failures == []
    if mode == "client-retries":  # the failures reached our client, which retried them
        assert json.loads(out.read_text())["requests"] > 2 * N_PROMPTS
    # Exactly as much successful work at the workers as results stored: nothing computed twice or lost.
    assert healthy.ok + flaky.ok == 4 * N_PROMPTS
    assert healthy.ok > 0 and flaky.ok > 0 and flaky.failed > 0
    figures = {
        "generation": {"w1_ok": after_generation[0], "w2_ok": after_generation[1], "w2_failed": after_generation[3]},
        "total": {"w1_ok": healthy.ok, "w1_failed": healthy.failed, "w2_ok": flaky.ok, "w2_failed": flaky.failed},
        "judge": json.loads(out.read_text()),
    }
    with capsys.disabled():
        print(f"\nvllm-router distribution ({mode}):", json.dumps(figures))

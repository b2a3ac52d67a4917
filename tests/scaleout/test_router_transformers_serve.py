"""vllm-router in front of two real ``transformers serve`` instances (SmolLM2 on CPU) on 127.0.0.1.

A generation run and a judge run go through the router; every result is stored exactly once and the
router's own metrics tell how the requests were spread over the two servers.

vllm-router 0.1.17 adds vLLM/SGLang sampling fields to every chat request (``no_stop_trim``, ``ignore_eos``,
``continue_final_message``, ...), which ``transformers serve`` refuses with HTTP 422 "Unexpected fields in
the request". Behind the router, vLLM servers are what it is built for; here a tiny shim in front of each
``transformers serve`` drops those fields (and counts what it forwards), so the path is tested end to end.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from qlora_eval.cli.main import main
from qlora_eval.store import Store
from tests.scaleout.test_vllm_router import _free_port, requests_per_worker, running_router

pytestmark = [pytest.mark.slow, pytest.mark.network]


@contextlib.contextmanager
def _transformers_serve(model_dir: Path) -> Iterator[str]:
    exe = shutil.which("transformers")
    if exe is None:
        pytest.skip("the 'transformers' command is not installed (pip install 'transformers[serving]')")
    port = _free_port()
    cmd = [exe, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {proc.stderr.read() if proc.stderr else ''}")
            if time.monotonic() > deadline:
                pytest.fail("transformers serve did not become healthy within 180 s")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


#: Fields vllm-router 0.1.17 adds to chat requests that only vLLM/SGLang servers accept.
ROUTER_ONLY_FIELDS = frozenset(
    {
        "no_stop_trim",
        "ignore_eos",
        "continue_final_message",
        "skip_special_tokens",
        "separate_reasoning",
        "stream_reasoning",
        "return_hidden_states",
        "include_reasoning",
    }
)


@contextlib.contextmanager
def _strip_shim(target: str) -> Iterator[str]:
    """An HTTP forwarder to ``target`` that drops :data:`ROUTER_ONLY_FIELDS` from JSON bodies."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _forward(self, body: bytes | None) -> None:
            request = urllib.request.Request(target + self.path, data=body, method=self.command)
            request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request, timeout=600) as reply:
                    status, raw = reply.status, reply.read()
            except urllib.error.HTTPError as exc:
                status, raw = exc.code, exc.read()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            self._forward(None)

        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            self._forward(json.dumps({k: v for k, v in payload.items() if k not in ROUTER_ONLY_FIELDS}).encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.timeout(900)
def test_two_transformers_serve_behind_vllm_router(
    smollm2_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "local")
    prompts = tmp_path / "two.jsonl"
    prompts.write_text("".join(json.dumps({"question": q}) + "\n" for q in ("Name a colour.", "Name a fruit.")))
    db = tmp_path / "t.db"
    with (
        _transformers_serve(smollm2_dir) as first,
        _transformers_serve(smollm2_dir) as second,
        _strip_shim(first) as shim_a,
        _strip_shim(second) as shim_b,
        running_router([shim_a, shim_b], tmp_path / "router.log") as (url, metrics),
    ):
        models = [f"openai:{smollm2_dir}?base_url={url}&name=smol-{m}&concurrency=2" for m in ("a", "b")]
        gen = ["generate", "--models", *models, "--prompts", str(prompts), "--prompt-field", "question"]
        gen += ["--max-new-tokens", "8", "--db", str(db), "--no-progress"]
        assert main(gen) == 0, capsys.readouterr()
        out = tmp_path / "j.json"
        judge = ["judge", "--db", str(db), "--models", "smol-a", "smol-b"]
        judge += ["--judge", f"openai:{smollm2_dir}?base_url={url}"]
        judge += ["--max-tokens", "8", "--timeout-s", "300", "--no-progress", "--json", str(out)]
        assert main(judge) == 0, capsys.readouterr()
        spread = requests_per_worker(metrics)
    with Store(db) as store:
        answers = Counter((a.model, a.prompt_id) for a in store.answers())
        judgments = Counter(s.key for s in store.judgments())
    assert len(answers) == 4 and set(answers.values()) == {1}
    assert len(judgments) == 4 and set(judgments.values()) == {1}  # 2 prompts x 1 pair x 2 orders
    calls = json.loads(out.read_text())["requests"]
    assert set(spread) == {shim_a, shim_b} and all(n > 0 for n in spread.values())
    assert sum(spread.values()) == 4 + calls  # the router sent each of our calls to exactly one server
    with capsys.disabled():
        print("\ntransformers serve x2 behind vllm-router:", json.dumps({"per_server": spread, "judge_calls": calls}))

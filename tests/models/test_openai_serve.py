"""The OpenAI backend and the generation runner against a real ``transformers serve`` running SmolLM2."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from qlora_eval.generate import generate_answers
from qlora_eval.models import load_chat_model
from qlora_eval.models.openai_backend import OpenAIChatModel
from qlora_eval.models.spec import parse_model_spec
from qlora_eval.prompts import load_prompt_set
from qlora_eval.store import Store
from qlora_eval.types import GenerationSettings, Message, Role

pytestmark = [pytest.mark.slow, pytest.mark.network]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(smollm2_dir: Path) -> Iterator[str]:
    """``transformers serve`` pinned to the SmolLM2 folder on 127.0.0.1; yields its base URL."""
    exe = shutil.which("transformers")
    if exe is None:
        pytest.skip("the 'transformers' command is not installed (pip install 'transformers[serving]')")
    port = _free_port()
    cmd = [exe, "serve", str(smollm2_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {proc.stderr.read() if proc.stderr else ''}")
            if time.monotonic() > deadline:
                pytest.fail("transformers serve did not become healthy within 120 s")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_openai_backend_against_transformers_serve(
    served: str, smollm2_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "local")  # the local server checks no key
    spec = parse_model_spec(f"openai:{smollm2_dir}?base_url={served}&name=smol-served")
    model = load_chat_model(spec)
    assert isinstance(model, OpenAIChatModel)
    greedy = GenerationSettings(do_sample=False, max_new_tokens=16)
    out = model.generate([[Message(Role.USER, "What is the capital of France?")]], greedy)
    assert "Paris" in out[0].text
    assert 0 < out[0].completion_tokens <= 16 and out[0].prompt_tokens > 5

    with Store(tmp_path / "s.db") as store:
        prompts = load_prompt_set("demo").limit(2)
        first = generate_answers(store, [spec], prompts, greedy, batch_size=2, progress=False)
        again = generate_answers(store, [spec], prompts, greedy, batch_size=2, progress=False)
        stored = store.answers(models=["smol-served"])
    assert (first.generated, again.generated, again.reused) == (2, 0, 2)
    assert {a.prompt_id for a in stored} == {"1", "2"}
    assert "Paris" in next(a.text for a in stored if a.prompt_id == "1")

"""``serve -v`` logs requests but never the tokens in their query strings; behind a trusted proxy that speaks
HTTPS (X-Forwarded-Proto), the sign-in cookie is Secure. A real ``qlora-eval serve`` process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.web.helpers import free_port, new_rater, seed_store

pytestmark = pytest.mark.network


def test_serve_verbose_never_logs_tokens_and_trusts_the_proxy(tmp_path: Path) -> None:
    db = tmp_path / "serve.db"
    seed_store(db, models=("alpha", "beta"), n_prompts=2)
    token = new_rater(db, "alice")
    port = free_port()
    cmd = [sys.executable, "-m", "qlora_eval", "-v", "serve", "--db", str(db), "--port", str(port)]
    cmd += ["--forwarded-allow-ips", "127.0.0.1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{url}/rate")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        plain = httpx.get(f"{url}/rate", params={"token": token})
        assert plain.status_code == 200 and "secure" not in plain.headers["set-cookie"].lower()
        proxied = httpx.get(f"{url}/rate", params={"token": token}, headers={"X-Forwarded-Proto": "https"})
        assert proxied.status_code == 200
        assert "secure" in [p.strip().lower() for p in proxied.headers["set-cookie"].split(";")]
        assert httpx.get(f"{url}/rate", params={"token": "forged-" + token}).status_code == 401
        assert httpx.get(f"{url}/admin", params={"token": token}).status_code == 401
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "GET /rate" in out, out  # requests are logged...
    assert token not in out, out  # ...without the token
    assert "?..." in out

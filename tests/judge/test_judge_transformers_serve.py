"""The openai judge against a real ``transformers serve`` running SmolLM2 on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qlora_eval.cli.main import main
from qlora_eval.store import Store
from tests.judge.conftest import fill_store
from tests.models.test_openai_serve import served  # noqa: F401 - the shared server fixture

pytestmark = [pytest.mark.slow, pytest.mark.network]


def test_judge_against_transformers_serve(served: str, smollm2_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    db = tmp_path / "serve.db"
    fill_store(db, n_prompts=1, models=("alpha", "beta"))  # 1 prompt x 1 pair x 2 orders
    out = tmp_path / "j.json"
    args = ["judge", "--db", str(db), "--models", "alpha", "beta", "--judge", f"openai:{smollm2_dir}?base_url={served}",
            "--max-tokens", "8", "--timeout-s", "120", "--no-progress", "--json", str(out)]  # fmt: skip
    assert main(args) == 0
    figures = json.loads(out.read_text())
    assert figures["judgments"] == 2 and figures["new"] == 2
    assert 2 <= figures["requests"] <= 4  # one call per judgment, plus a re-ask where the reply had no verdict
    with Store(db) as store:
        stored = [s.judgment for s in store.judgments()]
    assert len(stored) == 2 and {j.order.value for j in stored} == {"forward", "swapped"}
    for j in stored:
        assert j.rationale.strip() and j.prompt_tokens and j.prompt_tokens > 100 and j.completion_tokens
        assert j.settings["max_tokens"] == 8
    assert main(args) == 0
    assert json.loads(out.read_text())["requests"] == 0  # never pay twice

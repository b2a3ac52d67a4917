"""The tournament workflow end to end with stand-in models and the fake judge server (fast)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from qlora_eval.config import Contestant, JudgeConfig, PromptsConfig, TournamentConfig
from qlora_eval.judge.openai_judge import RetryPolicy
from qlora_eval.judge.session import JudgeOptions
from qlora_eval.models.base import ChatModel, Completion
from qlora_eval.models.spec import ModelSpec
from qlora_eval.store import Store
from qlora_eval.types import GenerationSettings, Message
from qlora_eval.workflows.tournament import run_tournament
from tests.judge.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]
NASTY = '<script>alert("x")</script> & <b>bold</b>'


class _Echo(ChatModel):
    """Answers with text whose length grows with the model's name length (so the fake judge ranks them)."""

    loads: ClassVar[list[str]] = []

    def __init__(self, name: str) -> None:
        self._name = name
        _Echo.loads.append(name)

    @property
    def name(self) -> str:
        return self._name

    def generate(
        self, prompts: Sequence[Sequence[Message]], settings: GenerationSettings, *, stop: Sequence[str] = ()
    ) -> list[Completion]:
        text = f"{self._name}: {NASTY} " + "word " * (3 * len(self._name))
        return [Completion(text=text, prompt_tokens=5, completion_tokens=9, latency_s=0.0) for _ in prompts]


def _loader(spec: ModelSpec) -> ChatModel:
    return _Echo(spec.name)


def _config(tmp_path: Path, fake: FakeOpenAI) -> TournamentConfig:
    settings = GenerationSettings(max_new_tokens=16)
    return TournamentConfig(
        name="test <cup>",
        models=tuple(
            Contestant(f"smollm2-135m?name={n}", settings, f"models[{i}]") for i, n in enumerate(["a", "bb", "ccc"])
        ),
        prompts=PromptsConfig(name="demo", limit=4),
        judge=JudgeConfig(spec=f"openai:fake-judge?base_url={fake.base_url}", max_tokens=64),
        rounds=50,
        db=tmp_path / "t.db",
        html=tmp_path / "out" / "t.html",
        json=tmp_path / "out" / "t.json",
    )


def test_tournament_end_to_end_and_rerun_does_no_new_work(tmp_path: Path) -> None:
    _Echo.loads.clear()
    with FakeOpenAI() as fake:
        config = _config(tmp_path, fake)
        options = JudgeOptions(max_tokens=64, concurrency=2, retry=RetryPolicy(max_attempts=2, timeout_s=5))
        first = run_tournament(config, options=options, loader=_loader, progress=False)
        assert _Echo.loads == ["a", "bb", "ccc"]
        assert first.generated == 12 and first.judging.new == 4 * 3 * 2 == fake.calls
        document = json.loads(config.json.read_text())
        assert [m["model"] for m in document["elo"]["models"]] == ["ccc", "bb", "a"]  # the fake judge likes length
        assert [m["model"] for m in document["bt"]["models"]] == ["ccc", "bb", "a"]
        assert document["elo"]["battles"] == 24 and document["diagnostics"]["length_preference"]["longer_win_rate"] == 1
        assert document["diagnostics"]["position_bias"]["consistency"] == 1.0
        html = config.html.read_text()
        assert NASTY not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
        assert "test &lt;cup&gt;" in html and "Battles" in html and "Bradley-Terry ratings" in html
        assert "The longer one is better." in html  # the judge's explanation is shown
        with Store(config.db) as store:
            counts = store.counts()

        _Echo.loads.clear()
        again = run_tournament(config, options=options, loader=_loader, progress=False)
        assert _Echo.loads == [], "a finished tournament loads no model"
        assert fake.calls == 24, "a finished tournament calls no judge"
        assert again.generated == 0 and again.reused_answers == 12 and again.judging.new == 0
        with Store(config.db) as store:
            after = store.counts()
        assert {k: after[k] for k in ("answers", "judgments", "prompts")} == {
            k: counts[k] for k in ("answers", "judgments", "prompts")
        }
        assert json.loads(config.json.read_text())["elo"]["models"] == document["elo"]["models"]

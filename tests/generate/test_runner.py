"""The generation runner: resume, per-batch storage, interruption, recorded metadata, the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from qlora_eval.cli.main import main
from qlora_eval.generate import generate_answers
from qlora_eval.models.base import ChatModel, Completion
from qlora_eval.models.dummy import DummyChatModel
from qlora_eval.models.spec import ModelSpec, parse_model_spec
from qlora_eval.models.threads import ThreadChoice
from qlora_eval.prompts import load_prompt_set
from qlora_eval.store import Store
from qlora_eval.types import GenerationSettings, Message

SETTINGS = GenerationSettings(seed=4, max_new_tokens=20)


def specs(tiny: Path, *names: str) -> list[ModelSpec]:
    return [parse_model_spec(f"hf:{tiny}?name={n}") for n in names]


class Loader:
    """Hands out dummy models and counts how often one is loaded."""

    def __init__(self) -> None:
        self.models: dict[str, DummyChatModel] = {}

    def __call__(self, spec: ModelSpec) -> ChatModel:
        self.models[spec.name] = DummyChatModel(spec.name)
        return self.models[spec.name]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "s.db")


def test_second_run_generates_nothing_and_reuses_all(store: Store, tmp_path: Path) -> None:
    demo = load_prompt_set("demo")
    models = specs(tmp_path, "m1", "m2")
    loader = Loader()
    first = generate_answers(store, models, demo, SETTINGS, batch_size=5, loader=loader, progress=False)
    assert (first.generated, first.reused) == (24, 0)
    assert [a.model for a in first.answers] == ["m1"] * 12 + ["m2"] * 12
    assert [a.prompt_id for a in first.answers[:12]] == [p.prompt_id for p in demo.prompts]
    loader2 = Loader()
    second = generate_answers(store, models, demo, SETTINGS, batch_size=5, loader=loader2, progress=False)
    assert (second.generated, second.reused) == (0, 24)
    assert loader2.models == {}  # nothing left to do: no model is even loaded
    assert [a.text for a in second.answers] == [a.text for a in first.answers]
    # Other settings are other answers.
    third = generate_answers(
        store, models[:1], demo.limit(2), GenerationSettings(seed=5, max_new_tokens=20), loader=Loader(), progress=False
    )
    assert (third.generated, third.reused) == (2, 0)


def test_answers_carry_spec_settings_hash_tokens_and_latency(store: Store, tmp_path: Path) -> None:
    demo = load_prompt_set("demo").limit(3)
    report = generate_answers(store, specs(tmp_path, "m1"), demo, SETTINGS, loader=Loader(), progress=False)
    stored = store.answers(models=["m1"])
    assert len(stored) == 3
    a = next(x for x in stored if x.prompt_id == "1")
    assert a.model_spec == f"hf:{tmp_path}?name=m1"
    assert a.settings == SETTINGS.to_dict()
    assert a.prompt_hash == demo.prompts[0].content_hash
    assert a.answer_tokens is not None and a.answer_tokens > 0 and a.prompt_tokens is not None
    assert a.latency_s is not None
    assert a.text.startswith("m1 answers: What is the capital of France?")
    prompts = store.prompts("demo")
    assert [p.prompt_id for p in prompts] == ["1", "2", "3"]
    row = store.prompt_versions("demo")[0]
    assert (row.set_version, row.set_hash) == (demo.version, demo.sha256)
    run = next(r for r in store.runs() if r.run_id == report.run_id)
    assert run.status == "done"
    assert run.config["prompt_set_sha256"] == demo.sha256


class Exploding(ChatModel):
    """Answers one batch, then the user presses Ctrl-C."""

    def __init__(self) -> None:
        self.inner = DummyChatModel("m1")
        self.batches = 0

    @property
    def name(self) -> str:
        return "m1"

    def generate(
        self, prompts: Sequence[Sequence[Message]], settings: GenerationSettings, *, stop: Sequence[str] = ()
    ) -> list[Completion]:
        self.batches += 1
        if self.batches == 2:
            raise KeyboardInterrupt
        return self.inner.generate(prompts, settings, stop=stop)


def test_interrupt_keeps_finished_batches_and_resume_completes(store: Store, tmp_path: Path) -> None:
    demo = load_prompt_set("demo")
    models = specs(tmp_path, "m1")
    with pytest.raises(KeyboardInterrupt):
        generate_answers(store, models, demo, SETTINGS, batch_size=4, loader=lambda s: Exploding(), progress=False)
    assert len(store.answers(models=["m1"])) == 4
    assert store.runs()[-1].status == "interrupted"
    loader = Loader()
    again = generate_answers(store, models, demo, SETTINGS, batch_size=4, loader=loader, progress=False)
    assert (again.generated, again.reused) == (8, 4)
    assert loader.models["m1"].calls == 8


def test_duplicate_display_names_are_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="name="):
        generate_answers(store, specs(tmp_path, "a", "a"), load_prompt_set("demo"), SETTINGS, loader=Loader())


def test_cli_generate_twice_with_a_real_tiny_model(tiny_llama_dir: Path, tmp_path: Path) -> None:
    db, out = tmp_path / "g.db", tmp_path / "g.json"
    argv = [
        "generate", "--models", f"hf:{tiny_llama_dir}?name=tiny", "--prompts", "demo", "--limit", "3",
        "--max-new-tokens", "6", "--seed", "1", "--batch-size", "2", "--device", "cpu", "--no-progress",
        "--db", str(db), "--json", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    first = json.loads(out.read_text())
    assert (first["generated"], first["reused"]) == (3, 0)
    assert [a["prompt_id"] for a in first["answers"]] == ["1", "2", "3"]
    assert all(a["model"] == "tiny" and 1 <= a["tokens"] <= 6 for a in first["answers"])
    assert main(argv) == 0
    second = json.loads(out.read_text())
    assert (second["generated"], second["reused"]) == (0, 3)
    assert second["answers"] == first["answers"]


def test_cli_bad_spec_exits_2_with_grammar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "--models", "nonsense", "--prompts", "demo", "--db", str(tmp_path / "x.db")])
    assert code == 2
    err = capsys.readouterr().err
    assert "model spec grammar" in err and "smollm2-135m" in err


def test_cli_unknown_prompt_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "--models", f"hf:{tmp_path}", "--prompts", "nope", "--db", str(tmp_path / "x.db")])
    assert code == 2
    assert "built-in sets are vicuna, oa, demo" in capsys.readouterr().err


class _OnCpu(DummyChatModel):
    """A dummy that reports the CPU thread choice a local model made at load time."""

    @property
    def cpu_threads(self) -> ThreadChoice | None:
        return ThreadChoice(1, "1 of 2 cores: load average 5.00 leaves 0 idle")


def test_the_cpu_thread_choice_is_recorded_with_the_run(store: Store, tmp_path: Path) -> None:
    demo = load_prompt_set("demo").limit(2)
    loaders = {"cpu": _OnCpu, "api": DummyChatModel}
    models = specs(tmp_path, "cpu", "api")
    report = generate_answers(store, models, demo, SETTINGS, loader=lambda s: loaders[s.name](s.name), progress=False)
    run = next(r for r in store.runs() if r.run_id == report.run_id)
    assert run.summary is not None
    assert run.summary["cpu_threads"] == {
        "cpu": {"threads": 1, "reason": "1 of 2 cores: load average 5.00 leaves 0 idle"}
    }

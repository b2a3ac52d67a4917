"""Fixtures: a store with prompts and answers of three models, and the fake chat-completions server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qlora_eval.store import Store
from qlora_eval.types import Answer, Message, Prompt, Role
from tests.judge.fake_openai import FakeOpenAI

MODELS = ("alpha", "beta", "gamma")
# Answer lengths differ per model so the fake judge (longer wins) gives known verdicts: gamma > beta > alpha.
_LENGTH = {"alpha": 10, "beta": 40, "gamma": 90}


def make_prompts(n: int = 3) -> list[Prompt]:
    categories = ["generic", "coding", "math", "writing"]
    return [
        Prompt(
            prompt_set="t",
            prompt_id=str(i + 1),
            turns=(Message(Role.USER, f"Question number {i + 1} about {{braces}}?"),),
            category=categories[i % len(categories)],
        )
        for i in range(n)
    ]


def fill_store(path: Path, n_prompts: int = 3, models: tuple[str, ...] = MODELS) -> list[Prompt]:
    prompts = make_prompts(n_prompts)
    with Store(path) as store:
        store.add_prompts(prompts, set_version="1", set_hash="x")
        answers = [
            Answer(
                model=m,
                model_spec=f"dummy:{m}",
                prompt_set=p.prompt_set,
                prompt_id=p.prompt_id,
                prompt_hash=p.content_hash,
                text=(f"{m} says " + "x" * _LENGTH[m] + " {code}"),
                settings={"temperature": 0.7},
            )
            for m in models
            for p in prompts
        ]
        store.add_answers(answers)
    return prompts


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "j.db"
    fill_store(path)
    return path


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server

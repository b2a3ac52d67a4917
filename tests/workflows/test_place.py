"""``place``: a new model judged against a few rivals through the real judge engine (fake chat server), and the
pure placement loop."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from qlora_eval.cli.main import main
from qlora_eval.rating import FitOptions, RatingMethod
from qlora_eval.store import Store
from qlora_eval.types import Answer, Judgment, Message, Order, Prompt, Role, Verdict
from qlora_eval.workflows.document import RankDocument
from qlora_eval.workflows.fitting import rank_judgments
from qlora_eval.workflows.placement import Played, place_model
from tests.judge.fake_openai import FakeOpenAI

BOARD = ("m1", "m2", "m3", "m4")
NEW = "newbie"
# The fake judge prefers the longer answer; lengths vary per prompt so every model wins and loses sometimes.
BASE_LENGTH = {"m1": 40, "m2": 55, "m3": 70, "m4": 85, NEW: 62}
N_PROMPTS = 12


def _fill(db: Path) -> None:
    prompts = [
        Prompt(prompt_set="t", prompt_id=f"{i:02d}", turns=(Message(Role.USER, f"Question {i}?"),), category="generic")
        for i in range(N_PROMPTS)
    ]
    with Store(db) as store:
        store.add_prompts(prompts, set_version="1", set_hash="x")
        store.add_answers(
            [
                Answer(
                    model=m,
                    model_spec=f"dummy:{m}",
                    prompt_set="t",
                    prompt_id=p.prompt_id,
                    prompt_hash=p.content_hash,
                    text="y" * (base + random.Random(f"{m}/{i}").randint(0, 45)),
                    settings={"temperature": 0.7},
                )
                for m, base in sorted(BASE_LENGTH.items())
                for i, p in enumerate(prompts)
            ]
        )


@pytest.fixture
def fake() -> FakeOpenAI:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def db(tmp_path: Path, fake: FakeOpenAI) -> Path:
    path = tmp_path / "p.db"
    _fill(path)
    judge = f"openai:fake-judge?base_url={fake.base_url}"
    assert main(["judge", "--db", str(path), "--models", *BOARD, "--judge", judge, "--no-progress"]) == 0
    assert fake.calls == 6 * N_PROMPTS * 2
    fake.calls = 0
    return path


def _place(db: Path, fake: FakeOpenAI, *extra: str) -> int:
    judge = f"openai:fake-judge?base_url={fake.base_url}"
    return main(["place", "--db", str(db), "--model", NEW, "--judge", judge, "--rounds", "50", "--prior", "1", *extra])


def test_place_judges_only_the_new_model_against_k_rivals(
    db: Path, fake: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "place.json"
    assert _place(db, fake, "--rivals", "2", "--json", str(out)) == 0
    document = RankDocument.load(out)
    placement = document.placement
    assert placement is not None and placement["model"] == NEW
    rivals = placement["rivals"]
    assert 1 <= len(rivals) <= 2 and set(rivals) <= set(BOARD)
    # The first rival is the board model nearest the middle of the board (m2 or m3 by answer length).
    assert rivals[0] in ("m2", "m3")
    assert placement["calls"] == fake.calls == len(rivals) * N_PROMPTS * 2
    assert placement["round_robin_calls"] == len(BOARD) * N_PROMPTS * 2
    assert {row.model for row in document.ranking.models} == {*BOARD, NEW}
    assert document.ranking.parameters["fit"] == {**document.ranking.parameters["fit"], "method": "bt", "prior": 1.0}
    with Store(db) as store:
        judged = [s.judgment for s in store.judgments(models=[NEW, *BOARD])]
    new_pairs = {frozenset((j.model_a, j.model_b)) for j in judged if NEW in (j.model_a, j.model_b)}
    assert new_pairs == {frozenset((NEW, r)) for r in rivals}
    assert "placed newbie" in capsys.readouterr().out
    # A second run re-buys nothing: its rivals are already played.
    fake.calls = 0
    assert _place(db, fake, "--rivals", "2", "--json", str(out)) == 0
    assert fake.calls == 0 and RankDocument.load(out).placement["calls"] == 0  # type: ignore[index]


def test_dry_run_prices_and_judges_nothing(db: Path, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]) -> None:
    assert _place(db, fake, "--dry-run") == 0
    text = capsys.readouterr().out
    assert fake.calls == 0
    assert f"at most {3 * N_PROMPTS * 2} calls for 3 rivals, against {4 * N_PROMPTS * 2}" in text
    with Store(db) as store:
        assert not [s for s in store.judgments() if NEW in (s.judgment.model_a, s.judgment.model_b)]


def test_place_refuses_batch_and_a_missing_board(
    db: Path, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _place(db, fake, "--batch") == 2
    assert "drop --batch" in capsys.readouterr().err
    assert main(["place", "--db", str(db), "--model", NEW, "--judge", "openai:other-judge"]) == 2
    assert "judge a round robin first" in capsys.readouterr().err and fake.calls == 0


def test_budget_caps_the_whole_placement(db: Path, fake: FakeOpenAI, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  fake-judge: {input_per_mtok: 1000, output_per_mtok: 1000}\n")
    out = tmp_path / "b.json"
    code = _place(db, fake, "--prices", str(prices), "--budget-usd", "3", "--concurrency", "1", "--json", str(out))
    placement = RankDocument.load(out).placement
    assert code == 1 and placement is not None and placement["stopped"] == "budget"
    assert 0 < fake.calls < N_PROMPTS * 2  # stopped inside the first rival, nothing beyond the budget
    with Store(db) as store:
        assert store.runs()[-1].status == "incomplete"


# -- the pure loop ------------------------------------------------------------------------------------------------

STRENGTH = {"a": -300.0, "b": -150.0, "c": 0.0, "d": 150.0, "e": 300.0, "x": 80.0}


def _verdicts(rng: np.random.Generator, first: str, second: str, prompts: int) -> list[Judgment]:
    out = []
    for p in range(prompts):
        for shown_a, shown_b in ((first, second), (second, first)):
            prob = 1 / (1 + 10 ** ((STRENGTH[shown_b] - STRENGTH[shown_a]) / 400))
            verdict = Verdict.A if rng.random() < prob else Verdict.B
            out.append(
                Judgment(
                    judge="j",
                    model_a=shown_a,
                    model_b=shown_b,
                    prompt_set="s",
                    prompt_id=str(p),
                    order=Order.of(shown_a, shown_b),
                    verdict=verdict,
                )
            )
    return out


def test_loop_starts_in_the_middle_and_stops_at_k() -> None:
    rng = np.random.default_rng(0)
    board_models = sorted(set(STRENGTH) - {"x"})
    board = [j for i, a in enumerate(board_models) for b in board_models[i + 1 :] for j in _verdicts(rng, a, b, 40)]
    asked: list[str] = []

    def play(rival: str) -> Played:
        asked.append(rival)
        return Played(tuple(_verdicts(rng, "x", rival, 40)), 80)

    def fit(judgments: object) -> object:
        return rank_judgments(judgments, RatingMethod.BT, 30, np.random.default_rng(1), FitOptions())  # type: ignore[arg-type]

    judgments, placement = place_model(board, "x", rivals=3, fit=fit, play=play, round_robin_calls=400)  # type: ignore[arg-type]
    assert asked[0] == "c"  # the middle of the board
    assert placement.rivals == tuple(asked) and len(asked) <= 3 and len(set(asked)) == len(asked)
    assert placement.calls == 80 * len(asked) and placement.stopped in ("rivals", "separated")
    assert len(judgments) == len(board) + 80 * len(asked)
    assert json.dumps(placement.to_json())

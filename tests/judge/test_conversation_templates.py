"""Judges see the whole conversation; templates are versioned; the paper's reviewer prompts as a template set."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qlora_eval.errors import ConfigError, InputError
from qlora_eval.judge.base import Budget
from qlora_eval.judge.openai_judge import OpenAIJudge, RetryPolicy
from qlora_eval.judge.paper_parse import parse_paper_three_class, parse_score_pair
from qlora_eval.judge.paper_templates import load_paper_templates
from qlora_eval.judge.plan import latest_answers
from qlora_eval.judge.runner import run_judge
from qlora_eval.judge.session import JudgeOptions, plan
from qlora_eval.judge.spec import parse_judge_spec
from qlora_eval.judge.templates import default_template_dir, load_templates, resolve_templates
from qlora_eval.prompts import load_prompt_set
from qlora_eval.store import Store
from qlora_eval.types import Answer, Judgment, Message, Order, Prompt, Role, Verdict
from tests.judge.fake_openai import FakeOpenAI

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
QLORA = DATA / "qlora"
needs_data = pytest.mark.skipif(not (DATA / "oa_questions.jsonl").is_file(), reason="needs ../shared/data")
FAST_RETRY = RetryPolicy(max_attempts=2, timeout_s=5.0, backoff_base_s=0.01, backoff_max_s=0.05)
#: sha256 of version 1 of the shipped templates (no conversation slot).
V1_HASHES = {
    "general": "d74eb432bb74b7bc0cf58c15edb6a65787b81fc22ed2e3415ef69f49642014d3",
    "coding": "aa748f82ec9fed526c9a66ed3e79fe33644ca1a1b817ad972a9829efbbd397eb",
    "math": "c44c151dfcdcd19268b970a42780fdd9865ff31f4f4c3fa25e113e6b0393aa4b",
}


def _answers(prompts: list[Prompt], models: tuple[str, ...]) -> list[Answer]:
    return [
        Answer(m, f"dummy:{m}", p.prompt_set, p.prompt_id, p.content_hash, f"{m} answer {'x' * (5 * i)}", {})
        for i, m in enumerate(models)
        for p in prompts
    ]


def _judge_with_fake(db: Path, fake: FakeOpenAI, options: JudgeOptions, prompt_set: str) -> None:
    spec = parse_judge_spec(f"openai:fake-judge?base_url={fake.base_url}")
    with Store(db) as store:
        prompts = store.prompts(prompt_set)
        answers = latest_answers(store.answers(prompt_set=prompt_set), prompts)
        job = plan(store, spec=spec, options=options, prompts=prompts, answers=answers, models=["alpha", "beta"])
        judge = OpenAIJudge(
            "fake-judge", base_url=fake.base_url, price=None, retry=FAST_RETRY, rng=np.random.default_rng(0)
        )
        run_judge(store, judge, job.requests, already_stored=0, budget=Budget(None), progress=False)


@needs_data
def test_fake_judge_server_receives_every_earlier_turn_of_an_oa_prompt(tmp_path: Path) -> None:
    oa = load_prompt_set("oa", data_dir=DATA)
    multi = next(p for p in oa.prompts if len(p.turns) >= 5)  # user, assistant, user, assistant, user
    db = tmp_path / "s.db"
    with Store(db) as store:
        store.add_prompts([multi], set_version=oa.version, set_hash=oa.sha256)
        store.add_answers(_answers([multi], ("alpha", "beta")))
    with FakeOpenAI() as fake:
        _judge_with_fake(db, fake, JudgeOptions(), "oa")
    assert fake.calls == 2  # one pair, both orders
    for request in fake.requests:
        user = next(m["content"] for m in request["messages"] if m["role"] == "user")
        positions = [user.index(turn.content.strip()) for turn in multi.turns]  # each turn is there ...
        assert positions == sorted(positions)  # ... in conversation order, the final question last
        assert "[Earlier conversation" in user and "[End of earlier conversation]" in user
        assert user.index("[End of earlier conversation]") < user.index("[Request]") < positions[-1]
        assert user.count("[Turn ") == len(multi.turns) - 1
    with Store(db) as store:
        verdicts = [s.judgment.verdict for s in store.judgments()]
    assert verdicts and Verdict.INVALID not in verdicts


def test_single_turn_prompt_has_no_conversation_block() -> None:
    template = load_templates().for_category("generic")
    user = template.render("What is 2+2?", "4", "5")[1].content
    assert "{conversation}" not in user and "[Earlier conversation" not in user
    assert "[Request]\nWhat is 2+2?" in user


def test_templates_are_version_2_with_new_hashes_so_old_judgments_are_not_reused(tmp_path: Path) -> None:
    templates = load_templates()
    assert {t.name: t.version for t in templates.templates.values()} == {"general": 2, "coding": 2, "math": 2}
    for name, old in V1_HASHES.items():
        assert templates.templates[name].sha256 != old
    prompt = Prompt("t", "1", (Message(Role.USER, "q"),), category="generic")
    db = tmp_path / "v.db"
    with Store(db) as store:
        store.add_prompts([prompt], set_version="1", set_hash="x")
        answers = _answers([prompt], ("alpha", "beta"))
        store.add_answers(answers)
        by_model = {a.model: a for a in answers}
        spec = parse_judge_spec("openai:gpt-4")
        settings = spec.settings(JudgeOptions())
        # A stored judgment of the v1 template, with every other key part equal.
        store.add_judgments(
            [
                Judgment(
                    spec.judge_id,
                    "alpha",
                    "beta",
                    "t",
                    "1",
                    Verdict.A,
                    Order.FORWARD,
                    V1_HASHES["general"],
                    by_model["alpha"].answer_key,
                    by_model["beta"].answer_key,
                    settings=settings,
                )
            ]
        )
        job = plan(
            store,
            spec=spec,
            options=JudgeOptions(),
            prompts=[prompt],
            answers=latest_answers(answers, [prompt]),
            models=["alpha", "beta"],
        )
    assert job.stored_keys == [] and len(job.requests) == 2


def test_a_template_without_the_conversation_slot_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "judge"
    shutil.copytree(default_template_dir(), folder)
    path = folder / "general.yaml"
    old = hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_text(path.read_text().replace("{conversation}", ""))
    manifest = folder / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace(old, hashlib.sha256(path.read_bytes()).hexdigest()))
    with pytest.raises(ConfigError, match=r"\{conversation\} receives the earlier turns"):
        load_templates(folder)


def test_unknown_template_set_suggests_the_nearest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'qlora-paper'"):
        resolve_templates("qlora-papr")


# -- the paper's templates ----------------------------------------------------------------------------


def _paper_rows(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (QLORA / "judge-prompts" / name).read_text().splitlines() if line.strip()]


@needs_data
@pytest.mark.parametrize(("category", "prompt_id"), [("generic", 1), ("coding", 2), ("math", 3), ("writing", 1)])
def test_paper_prompt_is_built_exactly_as_eval_gpt_review(category: str, prompt_id: int) -> None:
    templates = load_paper_templates(data_dir=QLORA)
    prompt = Prompt("vicuna", "7", (Message(Role.USER, "Explain {x} please"),), category=category)
    answer_1, answer_2 = "  first {answer_2} answer\n", "second"
    messages = templates.for_prompt(prompt).render_prompt(prompt, answer_1, answer_2)
    row = _paper_rows("vicuna_prompt_threeclass.jsonl")[prompt_id - 1]
    expected_user = str(row["prompt_template"]).format(
        question="Explain {x} please",
        answer_1=answer_1,
        answer_2=answer_2,
        **dict(row["defaults"]),  # type: ignore[arg-type]
    )
    assert [m.to_dict() for m in messages] == [
        {"role": "system", "content": row["system_prompt"]},
        {"role": "user", "content": expected_user},
    ]


@needs_data
def test_paper_templates_use_the_oa_files_for_oa_prompts_and_change_hash_by_file() -> None:
    templates = load_paper_templates(data_dir=QLORA)
    oa_prompt = Prompt("oa", "1", (Message(Role.USER, "hi"),), category=None)
    vicuna_prompt = Prompt("vicuna", "1", (Message(Role.USER, "hi"),), category="generic")
    oa_row = _paper_rows("oa_prompt_threeclass.jsonl")[0]
    oa_template = templates.for_prompt(oa_prompt)
    assert oa_template.defaults["prompt"] == oa_row["defaults"]["prompt"]  # type: ignore[index]
    assert oa_template.sha256 != templates.for_prompt(vicuna_prompt).sha256
    relative = load_paper_templates(protocol="relative", data_dir=QLORA).for_prompt(vicuna_prompt)
    assert "two values" in relative.defaults["prompt"] and relative.protocol == "relative"


def test_paper_templates_refuse_a_file_with_another_hash(tmp_path: Path) -> None:
    folder = tmp_path / "judge-prompts"
    folder.mkdir()
    for name in ("reviewer.jsonl", "vicuna_prompt_threeclass.jsonl"):
        (folder / name).write_text('{"prompt_id": 1}\n')
    with pytest.raises(InputError, match=r"expected (f9bbe8af|192edd95)"):
        load_paper_templates(data_dir=tmp_path, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("review\n1", Verdict.A),
        ("r\n 2 \n", Verdict.B),
        ("r\n3", Verdict.TIE),
        ("r\n4", Verdict.INVALID),
        ("r\n**2**", Verdict.INVALID),
        ("2\nbecause", Verdict.INVALID),
        ("", Verdict.INVALID),
    ],
)
def test_paper_three_class_parse(text: str, verdict: Verdict) -> None:
    assert parse_paper_three_class(text) is verdict


@pytest.mark.parametrize(
    ("text", "scores"),
    [
        ("8 7\nwhy", (8.0, 7.0)),
        ("8,7\n", (8.0, 7.0)),
        ("9.5 6\n", (9.5, 6.0)),
        ("8  7\n", None),
        ("Scores: 8 7\n", None),
        ("8\n7", None),
        ("-1 -1", None),
    ],
)
def test_paper_score_pair_parse(text: str, scores: tuple[float, float] | None) -> None:
    assert parse_score_pair(text) == scores


@needs_data
@pytest.mark.parametrize("layout", ["", "prompts", "judge-prompts"])
def test_paper_templates_are_found_in_a_clones_layout(tmp_path: Path, layout: str) -> None:
    folder = tmp_path / layout
    folder.mkdir(parents=True, exist_ok=True)
    for path in (QLORA / "judge-prompts").iterdir():
        (folder / path.name).symlink_to(path)
    templates = load_paper_templates(data_dir=tmp_path, cache_dir=tmp_path / "no-cache")
    assert templates.for_category("coding").name == "qlora-paper-vicuna_prompt_threeclass-2"


def test_local_next_token_judge_reads_every_earlier_turn(tmp_path: Path, tiny_llama_dir: Path) -> None:
    from qlora_eval.judge.local_judge import LocalJudge

    turns = (
        Message(Role.USER, "My cat is called Zebulon-earlier-1."),
        Message(Role.ASSISTANT, "Nice name, Zebulon-earlier-2!"),
        Message(Role.USER, "What is my cat called?"),
    )
    prompt = Prompt("t", "1", turns, category="generic")
    db = tmp_path / "l.db"
    with Store(db) as store:
        store.add_prompts([prompt], set_version="1", set_hash="x")
        store.add_answers(_answers([prompt], ("alpha", "beta")))
        spec = parse_judge_spec(f"local:hf:{tiny_llama_dir}")
        answers = latest_answers(store.answers(prompt_set="t"), [prompt])
        job = plan(
            store, spec=spec, options=JudgeOptions(), prompts=[prompt], answers=answers, models=["alpha", "beta"]
        )
        judge = LocalJudge(spec.target, batch_size=2)
        seen: list[str] = []
        model = judge._model  # spy on what the model is given (the judge's only input)
        original = model.next_token_logprobs

        def spy(texts: list[str], *args: object, **kwargs: object) -> object:
            seen.extend(texts)
            return original(texts, *args, **kwargs)  # type: ignore[arg-type]

        model.next_token_logprobs = spy  # type: ignore[method-assign]
        run_judge(store, judge, job.requests, already_stored=0, budget=Budget(None), progress=False)
    judged = [t for t in seen if "alpha answer" in t]  # not the content-free calibration prompts
    assert len(judged) == 2  # both orders (the judge averages them), each with the whole conversation
    for text in judged:
        assert text.index("Zebulon-earlier-1") < text.index("Zebulon-earlier-2") < text.index("What is my cat called?")

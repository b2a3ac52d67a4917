"""Issue 14: a judgment stored as INVALID (paid for) is not paid again, unless ``--retry-invalid``; the retry is
stored beside it (append-only) and a later ``--retry-invalid`` run does not pay for a retry that has a verdict."""

from __future__ import annotations

from pathlib import Path

from qlora_eval.judge.base import Budget
from qlora_eval.judge.plan import JudgePlan, latest_answers
from qlora_eval.judge.runner import JudgeRunSummary, run_judge
from qlora_eval.judge.session import JudgeOptions, plan
from qlora_eval.judge.spec import parse_judge_spec
from qlora_eval.store import Store
from qlora_eval.types import Verdict
from tests.judge.fake_openai import FakeOpenAI
from tests.judge.test_openai_judge import _judge


def _run(db: Path, fake: FakeOpenAI, retry_invalid: bool) -> tuple[JudgeRunSummary, JudgePlan]:
    with Store(db) as store:
        spec = parse_judge_spec(f"openai:fake-judge?base_url={fake.base_url}")
        prompts = store.prompts("t")
        answers = latest_answers(store.answers(prompt_set="t"), prompts)
        options = JudgeOptions(retry_invalid=retry_invalid)
        job = plan(store, spec=spec, options=options, prompts=prompts, answers=answers, models=["alpha", "beta"])
        summary = run_judge(store, _judge(fake), job.requests, already_stored=len(job.stored_keys),
                            budget=Budget(None), progress=False)  # fmt: skip
    return summary, job


def test_invalid_is_paid_again_only_with_retry_invalid(db: Path, fake: FakeOpenAI) -> None:
    fake.schedule = [("unparsable", "No idea."), ("unparsable", "Still none.")]
    first, _ = _run(db, fake, retry_invalid=False)
    assert first.invalid == 1 and fake.calls == 7
    _, job = _run(db, fake, retry_invalid=False)
    assert job.requests == [] and fake.calls == 7, "an INVALID judgment was paid for: not again by default"
    retried, job = _run(db, fake, retry_invalid=True)
    assert len(job.requests) == 1 and job.requests[0].retry == 1 and fake.calls == 8 and retried.new == 1
    with Store(db) as store:
        stored = [s.judgment for s in store.judgments()]
    assert len(stored) == 7  # the INVALID one is kept (append-only), its retry beside it
    [invalid] = [j for j in stored if j.verdict is Verdict.INVALID]
    [retry] = [j for j in stored if j.settings.get("retry") == 1]
    assert (retry.prompt_id, retry.model_a, retry.model_b) == (invalid.prompt_id, invalid.model_a, invalid.model_b)
    assert retry.verdict is not Verdict.INVALID and "retry" not in invalid.settings
    last, job = _run(db, fake, retry_invalid=True)
    assert job.requests == [] and fake.calls == 8 and last.already_stored == 6


def test_retry_invalid_reachable_from_cli_and_yaml(tmp_path: Path) -> None:
    from qlora_eval.cli.main import COMMANDS
    from qlora_eval.config import load_tournament_config

    for command in ("judge", "tournament"):
        import argparse
        import importlib

        parser = argparse.ArgumentParser()
        importlib.import_module(f"qlora_eval.cli.{COMMANDS[command][0]}").add_arguments(parser)
        assert "--retry-invalid" in parser.format_help()
    path = tmp_path / "t.yaml"
    path.write_text("models: [a, b]\njudge: {spec: 'openai:gpt-4', retry_invalid: true}\n")
    assert load_tournament_config(path).judge.retry_invalid is True

"""Shared judge options: the --judge help lists every registered judge kind."""

from __future__ import annotations

import argparse

import pytest

from qlora_eval.cli.main import main
from qlora_eval.cli.options import add_judge_options
from qlora_eval.judge.registry import JUDGE_KINDS


def test_judge_help_lists_every_registered_kind() -> None:
    parser = argparse.ArgumentParser()
    add_judge_options(parser)
    [action] = [a for a in parser._actions if "--judge" in a.option_strings]
    assert action.help is not None
    assert set(JUDGE_KINDS) >= {"openai", "local", "local-likelihood"}
    for name, kind in JUDGE_KINDS.items():
        assert f"{name}:" in action.help
        assert " ".join(kind.grammar.split()) in action.help


@pytest.mark.parametrize("command", ["judge", "tournament"])
def test_help_renders_with_the_judge_grammar(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "tie_margin=X" in text and "openai:MODEL[?base_url=URL]" in text

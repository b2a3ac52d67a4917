"""``JudgeOptions.template_dir`` and ``local_batch_size`` reach the judge from every entry point.

Before, no flag or YAML key set them: ``--judge-template-dir``/``--local-batch-size`` did not exist (argparse
refused them) and the tournament YAML refused ``judge.template_dir``/``judge.local_batch_size`` as unknown keys.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from qlora_eval.cli import tournament_cmd
from qlora_eval.cli.options import add_judge_options, options_from_args
from qlora_eval.config import load_tournament_config
from qlora_eval.errors import ConfigError
from qlora_eval.workflows.tournament import judge_options


def _judge_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_judge_options(parser)
    return parser.parse_args(list(argv))


def _tournament_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    tournament_cmd.add_arguments(parser)
    return parser.parse_args(list(argv))


def _yaml(tmp_path: Path, judge: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(f"models: [a, b]\njudge: {judge}\n")
    return path


def test_judge_cli_flags_reach_the_options(tmp_path: Path) -> None:
    options = options_from_args(_judge_args("--judge-template-dir", str(tmp_path), "--local-batch-size", "16"))
    assert (options.template_dir, options.local_batch_size) == (tmp_path, 16)
    unset = options_from_args(_judge_args())
    assert (unset.template_dir, unset.local_batch_size) == (None, None)


def test_judge_cli_refuses_a_batch_size_below_one() -> None:
    with pytest.raises(ConfigError, match="--local-batch-size must be >= 1"):
        options_from_args(_judge_args("--local-batch-size", "0"))


def test_tournament_yaml_keys_reach_the_options(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    config = load_tournament_config(
        _yaml(tmp_path, f'{{spec: "local:smollm2-135m", template_dir: "{folder}", local_batch_size: 4}}')
    )
    options = judge_options(config)
    assert (options.template_dir, options.local_batch_size) == (folder, 4)


def test_tournament_cli_flags_override_the_yaml(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    path = _yaml(tmp_path, '{spec: "local:smollm2-135m", template_dir: "/elsewhere", local_batch_size: 4}')
    args = _tournament_args("--config", str(path), "--judge-template-dir", str(folder), "--local-batch-size", "2")
    options = judge_options(tournament_cmd.config_from_args(args))
    assert (options.template_dir, options.local_batch_size) == (folder, 2)
    kept = judge_options(tournament_cmd.config_from_args(_tournament_args("--config", str(path))))
    assert (kept.template_dir, kept.local_batch_size) == (Path("/elsewhere"), 4)
    flags_only = _tournament_args("--models", "a", "b", "--local-batch-size", "3")
    assert judge_options(tournament_cmd.config_from_args(flags_only)).local_batch_size == 3


@pytest.mark.parametrize(
    ("judge", "match"),
    [
        ("{local_batch_size: 0}", r"judge\.local_batch_size.*>= 1"),
        ("{local_batch_size: many}", r"judge\.local_batch_size.*expected int"),
        ("{template_dir: 3}", r"judge\.template_dir.*expected str"),
    ],
)
def test_tournament_yaml_bad_values_name_the_field(tmp_path: Path, judge: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_tournament_config(_yaml(tmp_path, judge))

"""Issue 14: every file the CLI reads as text gives an InputError naming the file and the bad byte, never a
UnicodeDecodeError traceback (each case failed before ``qlora_eval.paths.read_text``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qlora_eval.errors import InputError

# A Latin-1 "café" at a known offset: the first byte that is not UTF-8 is 0xE9.
HEAD = b"name: caf"
LATIN1 = HEAD + b"\xe9\n"


def _loaders() -> dict[str, tuple[str, Callable[[Path], Any]]]:
    from qlora_eval.bench.mmlu.data import load_qlora_file
    from qlora_eval.bench.shapes import shape_config
    from qlora_eval.config import load_tournament_config
    from qlora_eval.judge.pricing import load_prices
    from qlora_eval.judge.templates import load_templates
    from qlora_eval.prompts import load_user_file, parse_manifest
    from qlora_eval.train.config import DatasetFormat
    from qlora_eval.train.data import load_examples
    from qlora_eval.workflows.document import RankDocument
    from qlora_eval.workflows.mmlu import load_mmlu_runs

    def templates(path: Path) -> Any:
        (path.parent / "templates").mkdir()
        target = path.parent / "templates" / "manifest.yaml"
        path.rename(target)
        return load_templates(target.parent)

    return {
        "tournament yaml": ("t.yaml", load_tournament_config),
        "prompt manifest": ("m.yaml", parse_manifest),
        "prompt jsonl": ("p.jsonl", load_user_file),
        "prompt csv": ("p.csv", load_user_file),
        "price table": ("prices.yaml", load_prices),
        "judge templates": ("manifest.yaml", templates),
        "rank document": ("r.json", RankDocument.load),
        "mmlu data": ("mmlu.jsonl", load_qlora_file),
        "mmlu report input": ("run.json", lambda p: load_mmlu_runs([p])),
        "model shape config": ("config.json", lambda p: shape_config(str(p))),
        "training data": ("train.jsonl", lambda p: load_examples(str(p), DatasetFormat.GUANACO)),
    }


@pytest.mark.parametrize("case", sorted(_loaders()))
def test_non_utf8_file_is_input_error_naming_file_and_byte(tmp_path: Path, case: str) -> None:
    name, load = _loaders()[case]
    path = tmp_path / name
    path.write_bytes(LATIN1)
    with pytest.raises(InputError) as caught:
        load(path)
    message = str(caught.value)
    assert "not UTF-8" in message and f"at byte {len(HEAD)}" in message, message
    assert path.name in message


def test_tournament_cli_non_utf8_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qlora_eval.cli.main import main

    path = tmp_path / "t.yaml"
    path.write_bytes(LATIN1)
    assert main(["tournament", "--config", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: not UTF-8 text" in err and f"at byte {len(HEAD)}" in err


def test_import_non_utf8_names_file_and_byte(tmp_path: Path) -> None:
    from qlora_eval.interchange import FORMATS, ImportOptions, read_inputs

    # qlora-generations reads the Vicuna prompt file before its own (a download here): tested in the fuzz module.
    for name in sorted(set(FORMATS) - {"qlora-generations"}):
        path = tmp_path / name / "a-vs-b-gpt-4-reviewer.jsonl"
        path.parent.mkdir()
        path.write_bytes(b'{"a": "caf\xe9"}\n')
        with pytest.raises(InputError, match=r"not UTF-8 text .* at byte 10"):
            read_inputs([path], name, ImportOptions())

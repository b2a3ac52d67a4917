"""Issue 14: names are free text, so a model, judge or rater name with a control character (newline, ESC ...)
or a bidi override/isolate is refused at every door, by the one validator ``qlora_eval.errors.check_name``."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlora_eval.errors import ConfigError, InputError, check_name
from qlora_eval.interchange import FORMATS, read_inputs
from qlora_eval.store import Store
from tests.cli.helpers import run_cli
from tests.interchange.samples import NEEDS_SHARED_DATA, write_sample

BAD = ["a\nb", "a\rb", "tab\there", "esc\x1b[31m", "del\x7f", "c1\x85", "\u202aembed", "\u202eoverride",
       "\u2066isolate", "pop\u2069"]  # fmt: skip
GOOD = ["guanaco-65b", "vicuna 13b", "Модель-7B", "模型", "naïve_model.v2", "a=b&c"]


@pytest.mark.parametrize("name", BAD)
def test_check_name_refuses_control_and_bidi(name: str) -> None:
    with pytest.raises(InputError, match=r"contains the character U\+[0-9A-F]{4}") as caught:
        check_name(name, "model name", where="--models")
    assert str(caught.value).startswith("--models: model name ")


@pytest.mark.parametrize("name", GOOD)
def test_check_name_accepts_plain_unicode(name: str) -> None:
    assert check_name(name, "model name") == name


# qlora file names cannot hold a newline's meaning (the file-name pattern refuses it), so each format gets ESC
# and a right-to-left override; formats with names inside JSON also get the newline that forged "PASS".
@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", ["x\x1b[1m", "x\u202eSSAP", "x\n## qlora-eval check: PASS"])
def test_every_import_format_refuses_bad_names_and_stores_nothing(
    tmp_path: Path, fmt: str, name: str, request: pytest.FixtureRequest
) -> None:
    if fmt == "qlora" and "\n" in name:
        pytest.skip("a newline cannot be part of a QLoRA review file name pattern (refused as 'does not parse')")
    shared = request.getfixturevalue("shared_data") if fmt in NEEDS_SHARED_DATA else None
    path, options = write_sample(fmt, tmp_path / "in", name, shared)
    with pytest.raises(InputError, match=r"U\+(001B|202E|000A)") as caught:
        read_inputs([path], fmt, options)
    assert str(path) in str(caught.value)


def test_import_cli_refuses_and_store_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.db")
    good, _ = write_sample("arena", tmp_path / "good", "fine")
    assert run_cli(capsys, "import", str(good), "--format", "arena", "--db", db)[0] == 0
    with Store(db) as store:
        before = (store.counts(), sorted(store.models()))
    assert before[0]["judgments"] == 2
    bad, _ = write_sample("arena", tmp_path / "bad", "evil\n## qlora-eval check: PASS")
    code, _, err = run_cli(capsys, "import", str(bad), "--format", "arena", "--db", db)
    assert code == 2 and f"{bad}: model name" in err and "U+000A" in err
    with Store(db) as store:
        assert (store.counts(), sorted(store.models())) == before


def test_rename_target_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, _ = write_sample("arena", tmp_path / "good", "fine")
    code, _, err = run_cli(capsys, "import", str(good), "--format", "arena", "--db", str(tmp_path / "s.db"),
                           "--rename", "fine=new\u202ename")  # fmt: skip
    assert code == 2 and "--rename: model name" in err and "U+202E" in err


@pytest.mark.parametrize(
    "spec", ["smollm2-135m?name=a%0A%23%23%20PASS", "smollm2-135m?name=x\u2066y", "hf:/models/x\ny"]
)
def test_model_specs_refuse_bad_names(spec: str) -> None:
    from qlora_eval.models.spec import parse_model_spec

    with pytest.raises(ConfigError, match=r"U\+(000A|2066)"):
        parse_model_spec(spec)


def test_generate_models_option_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "generate", "--models", "smollm2-135m?name=bad%0Aname", "--prompts", "demo",
                           "--db", str(tmp_path / "s.db"))  # fmt: skip
    assert code == 2 and "U+000A" in err


def test_tournament_yaml_model_name_refused(tmp_path: Path) -> None:
    from qlora_eval.config import load_tournament_config
    from qlora_eval.workflows.tournament import resolve_models

    path = tmp_path / "t.yaml"
    path.write_text('models:\n  - "smollm2-135m?name=good"\n  - "smollm2-135m?name=bad\\u202Ename"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"U\+202E") as caught:
        resolve_models(load_tournament_config(path))
    assert str(caught.value).startswith(f"{path}: field 'models[1]'")


def test_raters_add_refuses_control_characters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "raters", "add", "bob\u202e", "--create", "--db", str(tmp_path / "s.db"))
    assert code == 2 and "U+202E" in err

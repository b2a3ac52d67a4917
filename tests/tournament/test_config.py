"""Tournament YAML: typed fields, per-model sampling, errors naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlora_eval.config import load_tournament_config
from qlora_eval.errors import ConfigError
from qlora_eval.workflows.tournament import resolve_models

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", sorted((REPO / "tournaments").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_resolves(path: Path) -> None:
    config = load_tournament_config(path)
    specs = resolve_models(config)
    names = [s.name for s, _ in specs]
    assert len(names) >= 2 and len(set(names)) == len(names)


def test_shipped_configs_load_and_resolve() -> None:
    assert sorted(p.name for p in (REPO / "tournaments").glob("*.yaml")) == ["demo.yaml", "guanaco-vicuna.yaml"]
    demo = load_tournament_config(REPO / "tournaments" / "demo.yaml")
    specs = resolve_models(demo)
    assert [s.name for s, _ in specs] == ["smollm2-fp32", "smollm2-nf4", "smollm2-greedy", "smollm2-broken"]
    settings = dict((s.name, settings) for s, settings in specs)
    assert settings["smollm2-greedy"].do_sample is False and specs[0][1].do_sample is True
    assert specs[1][0].bits == 4
    # the control: hot sampling without nucleus truncation
    broken = settings["smollm2-broken"]
    assert broken.do_sample is True and broken.temperature == 2.0 and broken.top_p == 1.0
    assert settings["smollm2-fp32"].temperature == 0.7 and settings["smollm2-fp32"].top_p == 0.9
    assert demo.judge.spec.startswith("local-likelihood:") and demo.prompts.name == "demo"
    paper = load_tournament_config(REPO / "tournaments" / "guanaco-vicuna.yaml")
    resolved = resolve_models(paper)
    assert paper.judge.spec == "openai:gpt-4" and paper.prompts.name == "vicuna"
    assert any(s.adapter == "timdettmers/guanaco-7b" and s.bits == 4 for s, _ in resolved)


def test_per_model_sampling_overrides_the_default(tmp_path: Path) -> None:
    config = load_tournament_config(
        _write(
            tmp_path,
            "sampling: {max_new_tokens: 64, temperature: 0.5}\n"
            "models:\n  - smollm2-135m?name=a\n  - {spec: 'smollm2-135m?name=b', sampling: {temperature: 0.0}}\n",
        )
    )
    a, b = config.models
    assert a.sampling.temperature == 0.5 and a.sampling.max_new_tokens == 64
    assert b.sampling.temperature == 0.0 and b.sampling.max_new_tokens == 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [a]\nrounds: 10\nbogus: 1\n", "unknown fields ['bogus']"),
        ("models: smollm2-135m\n", "field 'models': expected a list"),
        ("models: ['smollm2-135m?name=a', 'smollm2-135m?name=b']\nrounds: many\n", "field 'rounds': expected int"),
        (
            "models: ['smollm2-135m?name=a', {spec: smollm2-135m, sampling: {temperature: -1}}]\n",
            "field 'models[1].sampling': temperature must be >= 0",
        ),
        (
            "models: ['smollm2-135m?name=a', {spec: smollm2-135m, sampling: {temprature: 1}}]\n",
            "field 'models[1].sampling': unknown keys ['temprature']",
        ),
        ("models: [smollm2-135m]\n", "at least two models"),
        ("models: ['smollm2-135m?name=a', 'smollm2-135m?name=b']\nprompts: {name: demo, limit: 0}\n", "prompts.limit"),
        (
            "models: ['smollm2-135m?name=a', 'smollm2-135m?name=b']\njudge: {spec: x, temp: 1}\n",
            "unknown keys ['temp']",
        ),
        ("models: [a, b]\n: [\n", "cannot read YAML"),
    ],
)
def test_errors_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_tournament_config(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_bad_spec_and_duplicate_names_are_reported_with_the_field(tmp_path: Path) -> None:
    bad = load_tournament_config(_write(tmp_path, "models: ['smollm2-135m?name=a', 'hf:x?bits=3']\n"))
    with pytest.raises(ConfigError, match=r"t\.yaml: field 'models\[1\]'.*bits must be one of"):
        resolve_models(bad)
    same = load_tournament_config(_write(tmp_path, "models: [smollm2-135m, smollm2-135m]\n"))
    with pytest.raises(ConfigError, match="share the display name 'smollm2-135m'"):
        resolve_models(same)

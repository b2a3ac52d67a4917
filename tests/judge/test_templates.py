"""Judge templates: shipped, hashed, routed by category, rendered safely; tampering is refused."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from qlora_eval.errors import ConfigError
from qlora_eval.judge.templates import default_template_dir, load_templates
from qlora_eval.types import Role

REPO = Path(__file__).resolve().parents[2]


def test_shipped_templates_load_with_file_hashes() -> None:
    templates = load_templates()
    assert set(templates.templates) == {"general", "coding", "math"}
    for name, template in templates.templates.items():
        raw = (default_template_dir() / f"{name}.yaml").read_bytes()
        assert template.sha256 == hashlib.sha256(raw).hexdigest()
    assert len({t.sha256 for t in templates.templates.values()}) == 3


def test_repository_prompts_folder_is_the_package_data() -> None:
    assert (REPO / "prompts" / "judge" / "manifest.yaml").resolve() == (
        default_template_dir() / "manifest.yaml"
    ).resolve()


@pytest.mark.parametrize(
    ("category", "expected"),
    [("coding", "coding"), ("math", "math"), ("Math", "math"), ("generic", "general"), (None, "general")],
)
def test_routing_by_category(category: str | None, expected: str) -> None:
    assert load_templates().for_category(category).name == expected


def test_render_keeps_braces_and_order() -> None:
    template = load_templates().for_category("coding")
    messages = template.render("Fix {x}?", "def f(): return {1: 2}", "second {answer_1}")
    assert [m.role for m in messages] == [Role.SYSTEM, Role.USER]
    user = messages[1].content
    assert "Fix {x}?" in user
    assert user.index("def f(): return {1: 2}") < user.index("second {answer_1}")
    assert "only one character: 1" in user


def test_edited_template_without_new_hash_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "judge"
    shutil.copytree(default_template_dir(), folder)
    (folder / "math.yaml").write_text((folder / "math.yaml").read_text() + "\n# edited\n")
    with pytest.raises(ConfigError, match=r"math\.yaml has sha256"):
        load_templates(folder)


def test_manifest_naming_an_unknown_route_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "judge"
    shutil.copytree(default_template_dir(), folder)
    manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
    manifest["routes"]["coding"] = "nope"
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(ConfigError, match="unknown template 'nope'"):
        load_templates(folder)

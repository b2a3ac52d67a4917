"""Judge prompt templates: versioned YAML files with a manifest of sha256 hashes, shipped in the package.

The templates live in ``qlora_eval/data/judge/`` (``prompts/judge`` in the repository points there), so an
installed package finds them. Every judgment records the hash of the template that produced it, so editing a
template never mixes old and new verdicts under one key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from qlora_eval.errors import ConfigError
from qlora_eval.types import Message, Prompt, Role

_PLACEHOLDERS = ("{question}", "{answer_1}", "{answer_2}")


@dataclass(frozen=True)
class JudgeTemplate:
    """One judge prompt.

    Attributes:
        name: template name (``general``, ``coding``, ``math``).
        version: integer version from the file.
        sha256: hash of the file's bytes (recorded as the judgment's ``template_hash``).
        system: the system message.
        user: the user message with ``{question}``, ``{answer_1}`` and ``{answer_2}`` placeholders.
    """

    name: str
    version: int
    sha256: str
    system: str
    user: str

    def render(self, question: str, answer_1: str, answer_2: str) -> list[Message]:
        """The chat messages asking the judge to compare ``answer_1`` (shown first) with ``answer_2``."""
        # str.replace, not str.format: answers often contain braces (code), which format would choke on.
        text = self.user.replace("{question}", question)
        text = text.replace("{answer_1}", answer_1.strip()).replace("{answer_2}", answer_2.strip())
        return [Message(Role.SYSTEM, self.system.strip()), Message(Role.USER, text)]


@dataclass(frozen=True)
class TemplateSet:
    """The templates of a manifest and the category routing between them."""

    templates: dict[str, JudgeTemplate]
    routes: dict[str, str]
    default: str
    source: str

    def for_category(self, category: str | None) -> JudgeTemplate:
        """The template for a prompt category: a routed one (coding, math) or the default (general)."""
        name = self.routes.get((category or "").strip().lower(), self.default)
        return self.templates[name]

    def for_prompt(self, prompt: Prompt) -> JudgeTemplate:
        return self.for_category(prompt.category)


def default_template_dir() -> Path:
    """The folder of the templates shipped inside the package."""
    return Path(str(resources.files("qlora_eval") / "data" / "judge"))


def load_templates(folder: Path | None = None) -> TemplateSet:
    """Load and verify the templates listed in ``folder/manifest.yaml``.

    Args:
        folder: a folder with ``manifest.yaml`` and the template files; default: the shipped ones.

    Raises:
        ConfigError: naming the file and field, when the manifest or a template is malformed or a file's
            sha256 differs from the manifest (someone edited it without updating the manifest).
    """
    folder = folder or default_template_dir()
    manifest_path = folder / "manifest.yaml"
    manifest = _read_yaml(manifest_path)
    entries = manifest.get("templates")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("field 'templates' must be a non-empty list", source=str(manifest_path))
    templates: dict[str, JudgeTemplate] = {}
    for index, entry in enumerate(entries):
        where = f"templates[{index}]"
        if not isinstance(entry, dict) or not all(k in entry for k in ("name", "version", "file", "sha256")):
            raise ConfigError(f"{where} needs name, version, file and sha256", source=str(manifest_path))
        path = folder / str(entry["file"])
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read {path}: {exc}", source=str(manifest_path)) from exc
        digest = hashlib.sha256(raw).hexdigest()
        if digest != entry["sha256"]:
            raise ConfigError(
                f"{where}: {path.name} has sha256 {digest} but the manifest says {entry['sha256']}; if you edited "
                "the template on purpose, bump its version and put the new hash in the manifest",
                source=str(manifest_path),
            )
        body = _read_yaml(path)
        for field_name in ("name", "version", "system", "user"):
            if field_name not in body:
                raise ConfigError(f"missing field {field_name!r}", source=str(path))
        if body["name"] != entry["name"] or body["version"] != entry["version"]:
            raise ConfigError(
                f"name/version {body['name']}/{body['version']} differ from the manifest's "
                f"{entry['name']}/{entry['version']}",
                source=str(path),
            )
        missing = [p for p in _PLACEHOLDERS if p not in str(body["user"])]
        if missing:
            raise ConfigError(f"field 'user' lacks the placeholders {missing}", source=str(path))
        templates[str(entry["name"])] = JudgeTemplate(
            name=str(body["name"]),
            version=int(body["version"]),
            sha256=digest,
            system=str(body["system"]),
            user=str(body["user"]),
        )
    routes = manifest.get("routes", {})
    default = manifest.get("default")
    if not isinstance(routes, dict):
        raise ConfigError("field 'routes' must map categories to template names", source=str(manifest_path))
    for target in [*routes.values(), default]:
        if target not in templates:
            raise ConfigError(f"routes/default name the unknown template {target!r}", source=str(manifest_path))
    return TemplateSet(
        templates=templates,
        routes={str(k).lower(): str(v) for k, v in routes.items()},
        default=str(default),
        source=str(folder),
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read YAML: {exc}", source=str(path)) from exc
    if not isinstance(data, dict):
        raise ConfigError("expected a YAML mapping", source=str(path))
    return data

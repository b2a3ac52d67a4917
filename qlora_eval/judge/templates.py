"""Judge prompt templates: versioned YAML files with a manifest of sha256 hashes, shipped in the package.

The templates live in ``qlora_eval/data/judge/`` (``prompts/judge`` in the repository points there), so an
installed package finds them. Every judgment records the hash of the template that produced it, so editing a
template never mixes old and new verdicts under one key.

Judges see the whole conversation: a template's ``{conversation}`` slot receives the prompt's earlier turns,
each clearly marked, and ``{question}`` the final user message the answers respond to (version 2 of our
templates; version 1 showed only the final message, so its stored judgments are never reused for version 2).
The paper's templates (:mod:`qlora_eval.judge.paper_templates`, ``--judge-templates qlora-paper``) have no
such slot: their ``{question}`` gets the marked earlier turns followed by the final question.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from qlora_eval.errors import ConfigError
from qlora_eval.judge.paper_parse import parse_paper_three_class, parse_score_pair
from qlora_eval.judge.parse import parse_verdict
from qlora_eval.paths import read_text
from qlora_eval.types import Message, Prompt, Role, Verdict

_PLACEHOLDERS = ("{conversation}", "{question}", "{answer_1}", "{answer_2}")
#: The template sets ``--judge-templates`` accepts: ours (default) and the QLoRA paper's reviewer prompts.
TEMPLATE_SETS = ("qlora-eval", "qlora-paper")
#: Judging protocols: ``pairwise`` (1/2/3 verdicts) and ``relative`` (two 1-10 scores, the paper's % table).
PROTOCOLS = ("pairwise", "relative")


class TemplateStyle(Enum):
    """How a template is filled and its reply read.

    QLORA_EVAL: our templates: ``str.replace`` of ``{conversation}``, ``{question}``, ``{answer_1}``,
    ``{answer_2}`` (answers stripped), verdict on the last line (lenient about markdown around the digit).
    QLORA_PAPER: exactly ``eval/eval_gpt_review.py``: ``prompt_template.format(question=..., answer_1=...,
    answer_2=..., **defaults)``, answers as given, verdict ``int(last line)``, scores from the first line.
    """

    QLORA_EVAL = "qlora-eval"
    QLORA_PAPER = "qlora-paper"


def parse_verdict_in_style(style: TemplateStyle, text: str) -> Verdict:
    """A pairwise verdict read the way templates of ``style`` are read (synchronous and Batch API runs alike).

    QLORA_PAPER: the paper's ``int(last line)``; QLORA_EVAL: our lenient last-line parser.
    """
    if style is TemplateStyle.QLORA_PAPER:
        return parse_paper_three_class(text)
    return parse_verdict(text)


def conversation_block(earlier: Sequence[Message]) -> str:
    """The earlier turns of a conversation, each marked with its speaker, between clear start/end markers.

    Returns "" for a conversation of one turn (nothing before the final question).
    """
    if not earlier:
        return ""
    speakers = {Role.USER: "User", Role.ASSISTANT: "Assistant", Role.SYSTEM: "System"}
    lines = ["[Earlier conversation: the request below continues it]"]
    for number, turn in enumerate(earlier, start=1):
        lines.append(f"[Turn {number}, {speakers[turn.role]}]\n{turn.content.strip()}")
    lines.append("[End of earlier conversation]")
    return "\n".join(lines) + "\n\n"


#: The qlora-eval style's placeholders, filled in one pass by :meth:`JudgeTemplate.render`.
_PLACEHOLDER = re.compile(r"\{(conversation|question|answer_1|answer_2)\}")


@dataclass(frozen=True)
class JudgeTemplate:
    """One judge prompt.

    Attributes:
        name: template name (``general``, ``coding``, ``math``).
        version: integer version from the file.
        sha256: hash of the file's bytes (recorded as the judgment's ``template_hash``).
        system: the system message.
        user: the user message with ``{conversation}``, ``{question}``, ``{answer_1}`` and ``{answer_2}``
            placeholders (paper templates: ``str.format`` fields ``question``, ``answer_1``, ``answer_2`` and
            their ``defaults``).
        style: how the template is filled and its reply parsed.
        defaults: the paper templates' extra ``str.format`` fields.
        protocol: ``pairwise`` (a 1/2/3 verdict) or ``relative`` (two scores on the reply's first line).
    """

    name: str
    version: int
    sha256: str
    system: str
    user: str
    style: TemplateStyle = TemplateStyle.QLORA_EVAL
    defaults: Mapping[str, str] = field(default_factory=dict)
    protocol: str = "pairwise"

    def render(self, question: str, answer_1: str, answer_2: str, earlier: Sequence[Message] = ()) -> list[Message]:
        """The chat messages asking the judge to compare ``answer_1`` (shown first) with ``answer_2``.

        Args:
            question: the final user message (the one the answers respond to).
            answer_1, answer_2: the answers in the order shown.
            earlier: the conversation's turns before ``question`` (shown, marked, before it).
        """
        block = conversation_block(earlier)
        if self.style is TemplateStyle.QLORA_PAPER:
            # Exactly the paper's gen_prompt: str.format (values are not re-parsed, so braces are safe).
            text = self.user.format(question=block + question, answer_1=answer_1, answer_2=answer_2, **self.defaults)
            return [Message(Role.SYSTEM, self.system), Message(Role.USER, text)]
        # One pass over the template, not str.format (answers often hold braces, which format would choke on)
        # and not one str.replace after another (a literal "{answer_1}" in the question or earlier turns, e.g.
        # code, would be filled too): inserted text is never searched again.
        values = {
            "conversation": block,
            "question": question,
            "answer_1": answer_1.strip(),
            "answer_2": answer_2.strip(),
        }
        text = _PLACEHOLDER.sub(lambda match: values[match[1]], self.user)
        return [Message(Role.SYSTEM, self.system.strip()), Message(Role.USER, text)]

    def render_prompt(self, prompt: Prompt, answer_1: str, answer_2: str) -> list[Message]:
        """:meth:`render` for a prompt: every earlier turn, then its final question."""
        return self.render(prompt.question, answer_1, answer_2, prompt.turns[:-1])

    def parse_verdict(self, text: str) -> Verdict:
        """The pairwise verdict in a judge's reply, read the way this template's authors read it."""
        return parse_verdict_in_style(self.style, text)

    def parse_scores(self, text: str) -> tuple[float, float] | None:
        """The relative protocol's score pair on the reply's first line (None: unparsable, an INVALID call)."""
        return parse_score_pair(text)


@dataclass(frozen=True)
class TemplateSet:
    """The templates of a manifest and the category routing between them."""

    templates: dict[str, JudgeTemplate]
    routes: dict[str, str]
    default: str
    source: str
    by_prompt_set: Mapping[str, TemplateSet] = field(default_factory=dict)

    def for_category(self, category: str | None) -> JudgeTemplate:
        """The template for a prompt category: a routed one (coding, math) or the default (general)."""
        name = self.routes.get((category or "").strip().lower(), self.default)
        return self.templates[name]

    def for_prompt(self, prompt: Prompt) -> JudgeTemplate:
        """The template for a prompt: its set's own templates if any (the paper's OA prompts), else by category."""
        own = self.by_prompt_set.get(prompt.prompt_set)
        return own.for_category(prompt.category) if own is not None else self.for_category(prompt.category)

    def all_templates(self) -> list[JudgeTemplate]:
        """Every template of the set, those of per-prompt-set subsets included."""
        found = list(self.templates.values())
        for other in self.by_prompt_set.values():
            found.extend(other.all_templates())
        return found


def default_template_dir(protocol: str = "pairwise") -> Path:
    """The folder of the templates shipped inside the package (``relative/`` for the relative protocol)."""
    base = Path(str(resources.files("qlora_eval") / "data" / "judge"))
    return base / "relative" if protocol == "relative" else base


def resolve_templates(
    name: str = "qlora-eval",
    *,
    protocol: str = "pairwise",
    template_dir: Path | None = None,
    data_dir: Path | None = None,
) -> TemplateSet:
    """The template set a run uses.

    Args:
        name: ``qlora-eval`` (ours, or the folder ``template_dir``) or ``qlora-paper`` (the paper's reviewer
            prompts, fetched from the pinned URL or found in ``data_dir``).
        protocol: ``pairwise`` or ``relative``.
        template_dir: a folder with our-style templates and a manifest (only with ``qlora-eval``).
        data_dir: a folder holding the paper's files (``--data-dir``; see ``paper_templates``).

    Raises:
        ConfigError: an unknown set or protocol, or ``template_dir`` with the paper's set.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"--protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")
    if name == "qlora-paper":
        if template_dir is not None:
            raise ConfigError("a template folder and --judge-templates qlora-paper exclude each other; pick one")
        from qlora_eval.judge.paper_templates import load_paper_templates

        return load_paper_templates(protocol=protocol, data_dir=data_dir)
    if name != "qlora-eval":
        import difflib

        near = difflib.get_close_matches(name, TEMPLATE_SETS, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"unknown judge template set {name!r}{hint}; known: {', '.join(TEMPLATE_SETS)}")
    return load_templates(template_dir or default_template_dir(protocol))


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
            hint = (
                " ({conversation} receives the earlier turns of multi-turn prompts: without it the judge would "
                "never see them; put it before the request and bump the version)"
                if "{conversation}" in missing
                else ""
            )
            raise ConfigError(f"field 'user' lacks the placeholders {missing}{hint}", source=str(path))
        templates[str(entry["name"])] = JudgeTemplate(
            name=str(body["name"]),
            version=int(body["version"]),
            sha256=digest,
            system=str(body["system"]),
            user=str(body["user"]),
            protocol=str(body.get("protocol", "pairwise")),
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
    text = read_text(path, expected="a judge template YAML file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read YAML: {exc}", source=str(path)) from exc
    if not isinstance(data, dict):
        raise ConfigError("expected a YAML mapping", source=str(path))
    return data

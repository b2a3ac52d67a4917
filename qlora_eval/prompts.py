"""Prompt sets: the Vicuna 80, the OpenAssistant benchmark (953 conversations), the shipped ``demo`` set,
and any user JSONL/CSV (L1: no store, no engines).

Built-in sets are described by manifests (``qlora_eval/data/prompts/<name>.yaml``, linked from the
top-level ``prompts/`` folder): name, version, file name, public URL, pinned sha256 and format. A set's
file is looked up in this order:

1. ``data_dir/<filename>`` (``--data-dir`` or ``QLORA_EVAL_DATA``, e.g. ``../shared/data``);
2. the package itself (the ``demo`` set ships inside it);
3. the download cache ``<cache>/prompts/<filename>``;
4. else it is downloaded once from the manifest URL into that cache.

Every file found or downloaded must match the pinned sha256, else :class:`~qlora_eval.errors.InputError`.
Every :class:`PromptSet` carries its version and the sha256 of its file, which are stored with its prompts.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from qlora_eval import paths
from qlora_eval.errors import ConfigError, InputError
from qlora_eval.types import Message, Prompt, Role, canonical_json, sha256_text

log = logging.getLogger(__name__)

BUILTIN_SETS = ("vicuna", "oa", "demo")


class SetFormat(Enum):
    """How a prompt-set file is laid out."""

    VICUNA = "vicuna"  # JSONL: question_id, text, category
    OA = "oa"  # JSONL: question_id, input (Guanaco-format conversation), output (reference)


@dataclass(frozen=True)
class PromptSetManifest:
    """What a built-in prompt set is and where its file comes from.

    Attributes:
        name: the set's name (``vicuna``, ``oa``, ``demo``).
        version: the set's version label.
        format: the file layout.
        filename: the file's name in a data folder or cache.
        sha256: the pinned sha256 of the file.
        url: the public URL to download it from; ``None`` for sets shipped inside the package.
        license: where the data comes from and under what licence.
    """

    name: str
    version: str
    format: SetFormat
    filename: str
    sha256: str
    url: str | None = None
    license: str = ""


@dataclass(frozen=True)
class PromptSet:
    """A loaded prompt set.

    Attributes:
        name: the set's name (for user files, the file's stem).
        version: the set's version label (user files: ``sha256:<first 12 hex digits>``).
        sha256: sha256 of the file the prompts were read from (oasst1 builds: of their canonical JSON).
        source: the path or URL they were read from.
        prompts: the prompts, in file order.
    """

    name: str
    version: str
    sha256: str
    source: str
    prompts: tuple[Prompt, ...]

    def limit(self, n: int | None) -> PromptSet:
        """The first ``n`` prompts (all when ``n`` is None); version and hash stay those of the whole set."""
        if n is None:
            return self
        if n < 1:
            raise ConfigError(f"--limit must be >= 1, got {n}")
        return replace(self, prompts=self.prompts[:n])

    def __len__(self) -> int:
        return len(self.prompts)


def _package_prompts_dir() -> Path:
    return Path(str(resources.files("qlora_eval") / "data" / "prompts"))


def default_cache_dir() -> Path:
    """Where downloaded prompt files are kept: ``$QLORA_EVAL_CACHE/prompts`` or ``~/.cache/qlora-eval/prompts``."""
    return paths.cache_dir() / "prompts"


def load_manifest(name: str) -> PromptSetManifest:
    """The manifest of a built-in set.

    Raises:
        ConfigError: for an unknown name (listing the known ones) or a malformed manifest.
    """
    path = _package_prompts_dir() / f"{name}.yaml"
    if name not in BUILTIN_SETS or not path.is_file():
        raise ConfigError(
            f"unknown prompt set {name!r}; built-in sets are {', '.join(BUILTIN_SETS)}, "
            "or give the path of a .jsonl/.csv file"
        )
    return parse_manifest(path)


def parse_manifest(path: Path) -> PromptSetManifest:
    """Read a prompt-set manifest YAML file.

    Raises:
        ConfigError: naming the file and field when something is missing or wrong.
    """
    text = paths.read_text(path, expected="a prompt-set manifest (YAML)")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read the manifest: {exc}", source=str(path)) from exc
    if not isinstance(data, dict):
        raise ConfigError("a manifest must be a mapping", source=str(path))
    for key in ("name", "version", "format", "filename", "sha256"):
        if not isinstance(data.get(key), str | int) or str(data[key]) == "":
            raise ConfigError(f"field {key!r} is missing or empty", source=str(path))
    try:
        fmt = SetFormat(data["format"])
    except ValueError as exc:
        raise ConfigError(
            f"format {data['format']!r} is not one of {[f.value for f in SetFormat]}", source=str(path)
        ) from exc
    if not re.fullmatch(r"[0-9a-f]{64}", str(data["sha256"])):
        raise ConfigError("sha256 must be 64 lowercase hex digits", source=str(path))
    return PromptSetManifest(
        name=str(data["name"]),
        version=str(data["version"]),
        format=fmt,
        filename=str(data["filename"]),
        sha256=str(data["sha256"]),
        url=data.get("url"),
        license=str(data.get("license", "")),
    )


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(path: Path, expected: str, what: str) -> None:
    actual = file_sha256(path)
    if actual != expected:
        raise InputError(
            f"{what}: sha256 is {actual}, expected {expected}. The file is corrupt or a different version; "
            "delete it (if it is a cached download) or point --data-dir at the right file.",
            source=str(path),
        )


def download_verified(url: str, sha256: str, target: Path, *, timeout_s: float = 60.0) -> Path:
    """Download ``url`` to ``target`` (atomically) if its sha256 is ``sha256``.

    Raises:
        InputError: the download fails or its checksum differs (nothing is left at ``target``).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        actual = file_sha256(tmp)
        if actual != sha256:
            raise InputError(
                f"the download has sha256 {actual}, expected {sha256}; the file at the URL changed. "
                "Use --data-dir with a copy of the pinned version.",
                source=url,
            )
        tmp.replace(target)
    except (urllib.error.URLError, OSError) as exc:
        raise InputError(
            f"cannot download the prompt set: {exc}. Without network access, pass --data-dir DIR "
            "(or set QLORA_EVAL_DATA) to a folder holding the file.",
            source=url,
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return target


def locate_set_file(manifest: PromptSetManifest, *, data_dir: Path | None, cache_dir: Path | None = None) -> Path:
    """Find (or download once) a built-in set's file, checked against its pinned sha256.

    Raises:
        InputError: a wrong checksum, or no file and no way to download it.
    """
    what = f"prompt set {manifest.name!r}"
    if data_dir is not None:
        candidate = Path(data_dir) / manifest.filename
        if candidate.is_file():
            _check_sha256(candidate, manifest.sha256, what)
            return candidate
    shipped = _package_prompts_dir() / manifest.filename
    if shipped.is_file():
        _check_sha256(shipped, manifest.sha256, what)
        return shipped
    cached = (cache_dir or default_cache_dir()) / manifest.filename
    if cached.is_file():
        _check_sha256(cached, manifest.sha256, what)
        return cached
    if manifest.url is None:
        raise InputError(f"{what}: {manifest.filename} is not in {data_dir} and has no download URL")
    log.info("downloading %s from %s (once)", manifest.filename, manifest.url)
    return download_verified(manifest.url, manifest.sha256, cached)


def load_prompt_set(
    name_or_path: str,
    *,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    prompt_field: str = "text",
    id_field: str | None = None,
    category_field: str | None = None,
) -> PromptSet:
    """Load a built-in set by name or a user JSONL/CSV file by path.

    Args:
        name_or_path: ``vicuna``, ``oa``, ``demo`` or a ``.jsonl``/``.csv`` path.
        data_dir: a folder holding the real sets' files (checked against the pinned sha256).
        cache_dir: the download cache (default :func:`default_cache_dir`).
        prompt_field: user files: the field holding the prompt (a string, or for JSONL a list of
            ``{"role", "content"}`` messages ending with the user's).
        id_field: user files: the field holding the prompt id; ``None`` numbers rows from 1.
        category_field: user files: the field holding a category; ``None`` for none.

    Raises:
        ConfigError: an unknown set name.
        InputError: a bad file (naming file, line and field), a checksum mismatch, a failed download.
    """
    if name_or_path in BUILTIN_SETS:
        manifest = load_manifest(name_or_path)
        path = locate_set_file(manifest, data_dir=data_dir, cache_dir=cache_dir)
        rows = list(_read_jsonl(path))
        if manifest.format is SetFormat.VICUNA:
            prompts = [_vicuna_prompt(manifest.name, row, str(path), line) for line, row in rows]
        else:
            prompts = [_oa_prompt(manifest.name, row, str(path), line) for line, row in rows]
        _check_unique(prompts, str(path))
        return PromptSet(manifest.name, manifest.version, manifest.sha256, str(path), tuple(prompts))
    path = Path(name_or_path)
    if path.suffix.lower() not in {".jsonl", ".csv"}:
        raise ConfigError(
            f"unknown prompt set {name_or_path!r}; built-in sets are {', '.join(BUILTIN_SETS)}, "
            "or give the path of a .jsonl/.csv file"
        )
    if not path.is_file():
        raise InputError("no such file", source=str(path))
    return load_user_file(path, prompt_field=prompt_field, id_field=id_field, category_field=category_field)


def load_user_file(
    path: Path, *, prompt_field: str = "text", id_field: str | None = None, category_field: str | None = None
) -> PromptSet:
    """A user's JSONL or CSV prompt file as a prompt set named after the file's stem (see :func:`load_prompt_set`)."""
    source = str(path)
    rows = list(_read_csv(path)) if path.suffix.lower() == ".csv" else list(_read_jsonl(path))
    if not rows:
        raise InputError("the file holds no prompts", source=source)
    prompts = []
    for number, (line, row) in enumerate(rows, start=1):
        if prompt_field not in row:
            raise InputError(
                f"field {prompt_field!r} is missing (fields here: {sorted(row)}); choose one with --prompt-field",
                source=source,
                line=line,
            )
        turns = _user_turns(row[prompt_field], prompt_field, source, line)
        if id_field is None:
            prompt_id = str(number)
        elif row.get(id_field) in (None, ""):
            raise InputError(f"id field {id_field!r} is missing or empty", source=source, line=line)
        else:
            prompt_id = str(row[id_field])
        category = None
        if category_field is not None:
            if row.get(category_field) in (None, ""):
                raise InputError(f"category field {category_field!r} is missing or empty", source=source, line=line)
            category = str(row[category_field])
        prompts.append(Prompt(path.stem, prompt_id, turns, category=category))
    _check_unique(prompts, source)
    digest = file_sha256(path)
    return PromptSet(path.stem, f"sha256:{digest[:12]}", digest, source, tuple(prompts))


def _user_turns(value: Any, field: str, source: str, line: int) -> tuple[Message, ...]:
    if isinstance(value, str):
        if not value.strip():
            raise InputError(f"field {field!r} is empty", source=source, line=line)
        return (Message(Role.USER, value),)
    if isinstance(value, list) and value:
        try:
            turns = tuple(Message(Role(m["role"]), str(m["content"])) for m in value)
        except (TypeError, KeyError, ValueError) as exc:
            raise InputError(
                f"field {field!r}: a conversation must be a list of {{'role': system|user|assistant, 'content': ...}}",
                source=source,
                line=line,
            ) from exc
        if turns[-1].role is not Role.USER:
            raise InputError(f"field {field!r}: the conversation must end with a user turn", source=source, line=line)
        return turns
    raise InputError(
        f"field {field!r} must be a non-empty string or list of messages, got {type(value).__name__}",
        source=source,
        line=line,
    )


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    text = paths.read_text(path, expected="a JSONL prompt file")
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg} (column {exc.colno})", source=str(path), line=line_no) from exc
        if not isinstance(row, dict):
            raise InputError("each line must be a JSON object", source=str(path), line=line_no)
        yield line_no, row


def _read_csv(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    import io

    text = paths.read_text(path, expected="a CSV prompt file")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            yield reader.line_num, dict(row)
    except csv.Error as exc:
        raise InputError(f"cannot read the CSV file: {exc}", source=str(path)) from exc


def _field(row: Mapping[str, Any], key: str, source: str, line: int) -> Any:
    value = row.get(key)
    if value is None or value == "":
        raise InputError(f"field {key!r} is missing or empty", source=source, line=line)
    return value


def _vicuna_prompt(set_name: str, row: Mapping[str, Any], source: str, line: int) -> Prompt:
    return Prompt(
        prompt_set=set_name,
        prompt_id=str(_field(row, "question_id", source, line)),
        turns=(Message(Role.USER, str(_field(row, "text", source, line))),),
        category=str(_field(row, "category", source, line)),
    )


def _oa_prompt(set_name: str, row: Mapping[str, Any], source: str, line: int) -> Prompt:
    try:
        turns = parse_guanaco_conversation(str(_field(row, "input", source, line)))
    except ValueError as exc:
        raise InputError(f"field 'input': {exc}", source=source, line=line) from exc
    return Prompt(
        prompt_set=set_name,
        prompt_id=str(_field(row, "question_id", source, line)),
        turns=turns,
        category=row.get("category") or None,
        reference=row.get("output"),
    )


_MARKER = re.compile(r"### (Human|Assistant):")


def parse_guanaco_conversation(text: str) -> tuple[Message, ...]:
    """Split ``### Human: Q1 ### Assistant: A1 ### Human: Q2 ### Assistant:`` into ordered messages.

    The trailing empty ``### Assistant:`` (where the answer goes) is dropped, so the last message is the
    user's.

    Raises:
        ValueError: when the text does not start with ``### Human:``, turns do not alternate, or a
            non-final turn is empty.
    """
    pieces = _MARKER.split(text)
    if pieces[0].strip():
        raise ValueError(f"expected the text to start with '### Human:', got {pieces[0][:40]!r}")
    speakers, contents = pieces[1::2], pieces[2::2]
    if not speakers or speakers[0] != "Human":
        raise ValueError("expected the first turn to be '### Human:'")
    if speakers[-1] == "Assistant" and not contents[-1].strip():
        speakers, contents = speakers[:-1], contents[:-1]
    messages: list[Message] = []
    for index, (speaker, content) in enumerate(zip(speakers, contents, strict=True)):
        expected = "Human" if index % 2 == 0 else "Assistant"
        if speaker != expected:
            raise ValueError(f"turn {index + 1} is '### {speaker}:' but '### {expected}:' was expected")
        if not content.strip():
            raise ValueError(f"turn {index + 1} ('### {speaker}:') is empty")
        messages.append(Message(Role.USER if speaker == "Human" else Role.ASSISTANT, content.strip()))
    if not messages or messages[-1].role is not Role.USER:
        raise ValueError("the conversation must end with a '### Human:' turn followed by '### Assistant:'")
    return tuple(messages)


def _check_unique(prompts: Sequence[Prompt], source: str) -> None:
    seen: set[str] = set()
    for p in prompts:
        if p.prompt_id in seen:
            raise InputError(f"prompt id {p.prompt_id!r} appears twice; ids must be unique", source=source)
        seen.add(p.prompt_id)


def build_oa_from_oasst1(dataset: Iterable[Mapping[str, Any]], *, name: str = "oa-oasst1") -> PromptSet:
    """The OA benchmark built from raw ``OpenAssistant/oasst1`` messages (the validation split).

    Every ``prompter`` message that has at least one ``assistant`` reply becomes a prompt: its
    ancestors and itself, in order, as chat messages. The reference is its best-ranked reply (rank 0
    first; unranked replies last). The prompt id is the message id; the hash is of the canonical JSON
    of the resulting prompts.

    Args:
        dataset: rows with ``message_id``, ``parent_id``, ``role`` (``prompter``/``assistant``), ``text``
            and optionally ``rank``: a ``datasets.Dataset`` (``load_dataset("OpenAssistant/oasst1",
            split="validation")``) or any iterable of such mappings.
        name: the set's name.

    Raises:
        InputError: a row lacks a field, has an unknown role, or names a parent that is absent.
    """
    source = "OpenAssistant/oasst1"
    by_id: dict[str, Mapping[str, Any]] = {}
    children: dict[str, list[Mapping[str, Any]]] = {}
    order: list[str] = []
    for index, row in enumerate(dataset, start=1):
        for key in ("message_id", "role", "text"):
            if row.get(key) in (None, ""):
                raise InputError(f"message {index}: field {key!r} is missing or empty", source=source)
        if row["role"] not in ("prompter", "assistant"):
            raise InputError(f"message {row['message_id']}: unknown role {row['role']!r}", source=source)
        by_id[row["message_id"]] = row
        order.append(row["message_id"])
        if row.get("parent_id"):
            children.setdefault(row["parent_id"], []).append(row)

    def context(message_id: str) -> list[Message]:
        chain: list[Message] = []
        current: str | None = message_id
        while current:
            if current not in by_id:
                raise InputError(f"message {message_id}: ancestor {current} is not in the data", source=source)
            row = by_id[current]
            chain.append(Message(Role.USER if row["role"] == "prompter" else Role.ASSISTANT, str(row["text"])))
            current = row.get("parent_id") or None
        return chain[::-1]

    def rank_key(row: Mapping[str, Any]) -> tuple[int, float]:
        rank = row.get("rank")
        return (1, 0.0) if rank is None else (0, float(rank))

    prompts = []
    for message_id in order:
        row = by_id[message_id]
        replies = [c for c in children.get(message_id, []) if c["role"] == "assistant"]
        if row["role"] != "prompter" or not replies:
            continue
        best = min(replies, key=rank_key)
        prompts.append(Prompt(name, message_id, tuple(context(message_id)), reference=str(best["text"])))
    if not prompts:
        raise InputError("no prompter message with an assistant reply was found", source=source)
    digest = sha256_text(canonical_json([[p.prompt_id, p.content_hash, p.reference] for p in prompts]))
    return PromptSet(name, f"oasst1:sha256:{digest[:12]}", digest, source, tuple(prompts))

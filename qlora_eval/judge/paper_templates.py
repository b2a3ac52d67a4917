"""The QLoRA paper's GPT-4 reviewer prompts as a template set (``--judge-templates qlora-paper``).

The files are the repository's ``eval/prompts/*.jsonl`` at a pinned commit, each checked against its sha256
like the prompt sets' files and never copied into the project. A file is looked up in this order:

1. ``data_dir/<file>``, ``data_dir/prompts/<file>``, ``data_dir/judge-prompts/<file>`` or
   ``data_dir/qlora/judge-prompts/<file>`` (``--data-dir`` or ``$QLORA_EVAL_DATA``: a clone's ``eval/prompts``
   or ``eval``, or a folder laid out like ``../shared/data/qlora``);
2. the download cache ``<cache>/qlora-paper/<file>``;
3. else it is downloaded once from the pinned URL into that cache.

The prompt is built as ``eval/eval_gpt_review.py``'s ``gen_prompt`` builds it: the reviewer of the prompt's
category (``reviewer.jsonl``; the first one, ``general``, for any other category) names a ``prompt_id``; that
prompt's ``system_prompt`` is the system message and ``prompt_template.format(question=..., answer_1=...,
answer_2=..., **defaults)`` the user message. Replies are read as the script reads them
(:mod:`qlora_eval.judge.paper_parse`). Vicuna prompts (and any set other than ``oa``) use the Vicuna files,
OA prompts the ``oa_*`` ones; the relative protocol has only the Vicuna file, used for every set. Where a
prompt has earlier turns, ``{question}`` receives them (marked) before the final question; for one-turn prompts
(all of Vicuna) the message is byte for byte the paper's. The paper sampled the reviewer at temperature 0.2
with at most 1024 tokens (``reviewer.jsonl`` metadata): pass ``--temperature 0.2`` to match it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qlora_eval import paths
from qlora_eval.errors import InputError
from qlora_eval.judge.templates import JudgeTemplate, TemplateSet, TemplateStyle
from qlora_eval.prompts import download_verified, file_sha256
from qlora_eval.types import canonical_json, sha256_text

log = logging.getLogger(__name__)

#: The commit of github.com/artidoro/qlora the files are pinned to.
PAPER_COMMIT = "7f4e95a68dc076bea9b3a413d2b512eca6d004e5"
PAPER_URL = f"https://raw.githubusercontent.com/artidoro/qlora/{PAPER_COMMIT}/eval/prompts/"
#: The reviewer's sampling in the paper (``reviewer.jsonl`` metadata).
PAPER_TEMPERATURE = 0.2
PAPER_MAX_TOKENS = 1024
#: file name -> pinned sha256.
PAPER_FILES = {
    "reviewer.jsonl": "f9bbe8afca441761cbbe5ed3298101e63e8e2d42a2f1dea0ce2c5c991b8d5893",
    "oa_reviewer.jsonl": "7c5e5b066ad6c6eb89447289457b12369c76fbdf5210d0373eb0cb4827453ed5",
    "vicuna_prompt_threeclass.jsonl": "192edd955272adffe0839d528d4663de2aa5bffe765b6ba78ab442195a69d340",
    "oa_prompt_threeclass.jsonl": "51dd88086a653b4095989fd013273b80629bfb829449e9dbbcc6bcab60172b2d",
    "vicuna_prompt_relative.jsonl": "475f1ff9e2872fe0ffd43db38fd5c3277f46fe6b2d62fcd2f968a0c9e59391a3",
}
#: Version of how we fill the paper's templates (bump when the earlier-turns block changes: new hashes).
_FILL_VERSION = 1


@dataclass(frozen=True)
class _Files:
    prompts: str
    reviewers: str


def locate_paper_file(name: str, *, data_dir: Path | None, cache_dir: Path | None = None) -> Path:
    """Find (or download once) one of the paper's prompt files, checked against its pinned sha256.

    Raises:
        InputError: a wrong checksum, or no file and no network.
    """
    expected = PAPER_FILES[name]
    folder = paths.data_dir(data_dir)
    # A clone's eval/prompts/ (the file itself or prompts/<file>), or a folder laid out like ../shared/data/qlora.
    layouts = ("", "prompts", "judge-prompts", "qlora/judge-prompts")
    candidates = [folder / layout / name for layout in layouts] if folder else []
    for candidate in [*candidates, (cache_dir or paths.cache_dir() / "qlora-paper") / name]:
        if candidate.is_file():
            actual = file_sha256(candidate)
            if actual != expected:
                raise InputError(
                    f"the paper's judge prompt file has sha256 {actual}, expected {expected} (commit "
                    f"{PAPER_COMMIT}); point --data-dir at the pinned files or delete a stale cached copy",
                    source=str(candidate),
                )
            return candidate
    log.info("downloading %s from %s (once)", name, PAPER_URL + name)
    return download_verified(PAPER_URL + name, expected, (cache_dir or paths.cache_dir() / "qlora-paper") / name)


def load_paper_templates(
    *, protocol: str = "pairwise", data_dir: Path | None = None, cache_dir: Path | None = None
) -> TemplateSet:
    """The paper's reviewer prompts as a :class:`TemplateSet` (routes by category, OA prompts by their set).

    Raises:
        InputError: a file is missing/corrupt or a row lacks the fields ``gen_prompt`` reads.
    """
    if protocol == "relative":
        return _load(_Files("vicuna_prompt_relative.jsonl", "reviewer.jsonl"), protocol, data_dir, cache_dir)
    vicuna = _load(_Files("vicuna_prompt_threeclass.jsonl", "reviewer.jsonl"), protocol, data_dir, cache_dir)
    oa = _load(_Files("oa_prompt_threeclass.jsonl", "oa_reviewer.jsonl"), protocol, data_dir, cache_dir)
    return TemplateSet(vicuna.templates, vicuna.routes, vicuna.default, vicuna.source, by_prompt_set={"oa": oa})


def _load(files: _Files, protocol: str, data_dir: Path | None, cache_dir: Path | None) -> TemplateSet:
    prompt_path = locate_paper_file(files.prompts, data_dir=data_dir, cache_dir=cache_dir)
    reviewer_path = locate_paper_file(files.reviewers, data_dir=data_dir, cache_dir=cache_dir)
    prompts = _rows(prompt_path, ("prompt_id", "system_prompt", "prompt_template", "defaults"))
    reviewers = _rows(reviewer_path, ("prompt_id", "category"))
    templates: dict[str, JudgeTemplate] = {}
    routes: dict[str, str] = {}
    default = ""
    for index, reviewer in enumerate(reviewers):
        prompt_id = int(reviewer["prompt_id"])
        # gen_prompt: prompt_jsons[prompt_id - 1], asserting its prompt_id matches.
        if not 1 <= prompt_id <= len(prompts) or int(prompts[prompt_id - 1]["prompt_id"]) != prompt_id:
            raise InputError(
                f"reviewer row {index + 1} names prompt_id {prompt_id}, not found", source=str(prompt_path)
            )
        row = prompts[prompt_id - 1]
        name = f"qlora-paper-{Path(files.prompts).stem}-{prompt_id}"
        key = {"fill": _FILL_VERSION, "file": files.prompts, "sha256": PAPER_FILES[files.prompts], "row": row}
        templates[name] = JudgeTemplate(
            name=name,
            version=_FILL_VERSION,
            sha256=sha256_text(canonical_json(key)),
            system=str(row["system_prompt"]),
            user=str(row["prompt_template"]),
            style=TemplateStyle.QLORA_PAPER,
            defaults={str(k): str(v) for k, v in dict(row["defaults"]).items()},
            protocol=protocol,
        )
        category = str(reviewer["category"])
        routes.setdefault(category.lower(), name)  # gen_prompt takes the first reviewer of a category
        if index == 0:
            default = name  # gen_prompt defaults to the first reviewer (general)
    return TemplateSet(templates, routes, default, f"qlora-paper ({files.prompts}, {files.reviewers})")


def _rows(path: Path, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(paths.read_text(path, expected="a JSONL file").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not JSON: {exc}", source=str(path), line=number) from exc
        missing = [f for f in fields if f not in row]
        if missing:
            raise InputError(f"missing fields {missing}", source=str(path), line=number)
        rows.append(row)
    return rows

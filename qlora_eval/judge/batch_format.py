"""The OpenAI Batch API's file formats, both ways (pure functions, no I/O).

Input: one JSON line per judge call, ``{"custom_id": KEY, "method": "POST", "url": "/v1/chat/completions",
"body": {...}}`` with the judgment's content key as ``custom_id`` (64 hex characters), so every result maps
back to exactly one planned judgment.

Output and error files: one JSON line per request, ``{"id", "custom_id", "response": {"status_code",
"request_id", "body"} | null, "error": {"code", "message"} | null}``, in no particular order. A line with
``status_code`` 200 holds a chat completion; anything else (an ``error`` object, another status code, a
request the window's end left unrun: ``batch_expired``) is a failure of that one key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qlora_eval.judge.base import CHARS_PER_TOKEN, JudgeRequest
from qlora_eval.judge.pricing import Price, estimate_tokens
from qlora_eval.judge.templates import TemplateStyle, parse_verdict_in_style
from qlora_eval.store.batches import BatchItem
from qlora_eval.types import Judgment, Order, Verdict

log = logging.getLogger(__name__)

#: The one endpoint our batches call.
CHAT_ENDPOINT = "/v1/chat/completions"
#: Marks the rationale of an unparsable batch reply (no re-ask is possible inside a batch).
NO_REASK_NOTE = "[batch: no verdict line; batches cannot re-ask, so this judgment is INVALID]"


def request_line(request: JudgeRequest, *, model: str, temperature: float, max_tokens: int) -> dict[str, Any]:
    """One input line for ``request``."""
    return {
        "custom_id": request.key,
        "method": "POST",
        "url": CHAT_ENDPOINT,
        "body": {
            "model": model,
            "messages": [m.to_dict() for m in request.messages],
            "temperature": temperature,
            "max_tokens": max_tokens,
        },
    }


def input_jsonl(requests: Sequence[JudgeRequest], *, model: str, temperature: float, max_tokens: int) -> bytes:
    """The input file for ``requests`` (UTF-8 JSONL, no blank lines)."""
    lines = [request_line(r, model=model, temperature=temperature, max_tokens=max_tokens) for r in requests]
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")


def item_for(request: JudgeRequest, judge_id: str, settings: dict[str, Any]) -> BatchItem:
    """What the store keeps per key to turn a result into a judgment later (without re-planning).

    The stored settings are the judgment's own (with ``{"retry": n}`` for a ``--retry-invalid`` call), since the
    key is computed from them: the judge's bare settings would rebuild another key on collection.
    """
    # Built by the request itself so the settings are exactly those its key was computed from.
    judgment_settings = request.judgment(judge_id, settings, Verdict.INVALID, "").settings
    return BatchItem(
        request.key,
        {
            "judge": judge_id,
            "model_a": request.answer_a.model,
            "model_b": request.answer_b.model,
            "prompt_set": request.prompt.prompt_set,
            "prompt_id": request.prompt.prompt_id,
            "order": request.order.value,
            "template_hash": request.template.sha256,
            # how the reply is read: the paper's templates are parsed the paper's way (as in synchronous runs)
            "template_style": request.template.style.value,
            "answer_a_key": request.answer_a.answer_key,
            "answer_b_key": request.answer_b.answer_key,
            "settings": judgment_settings,
            "prompt_chars": request.prompt_chars,
        },
    )


@dataclass(frozen=True)
class BatchResult:
    """The result of one request of a batch: a reply, or an error.

    Attributes:
        custom_id: the judgment key.
        text: the reply (None for a failure).
        prompt_tokens, completion_tokens: the server's usage (None when it sent none, or for a failure).
        error: why there is no reply (None for a success).
    """

    custom_id: str
    text: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    error: str | None


@dataclass(frozen=True)
class ParsedFile:
    """The results of one output or error file, and how many of its lines could not be read."""

    results: dict[str, BatchResult]
    unreadable: int


def parse_result_file(text: str, source: str) -> ParsedFile:
    """Read an output or error file.

    A line that is not JSON or has no ``custom_id`` is counted and logged (its key stays without a result
    and is planned again); it never stops the collection of the others.

    Args:
        text: the file's content.
        source: the file id, for messages.
    """
    results: dict[str, BatchResult] = {}
    unreadable = 0
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            custom_id = item["custom_id"]
            if not isinstance(custom_id, str):
                raise TypeError("custom_id is not a string")
        except (ValueError, KeyError, TypeError) as exc:
            unreadable += 1
            log.warning(
                "batch file %s line %d is unreadable (%s); its request will be planned again", source, number, exc
            )
            continue
        results[custom_id] = _result(custom_id, item)
    return ParsedFile(results, unreadable)


def _result(custom_id: str, item: dict[str, Any]) -> BatchResult:
    error = item.get("error")
    response = item.get("response")
    if error:
        code = error.get("code", "error") if isinstance(error, dict) else "error"
        message = error.get("message", "") if isinstance(error, dict) else str(error)
        return BatchResult(custom_id, None, None, None, f"batch request failed: {code}: {message}")
    if not isinstance(response, dict):
        return BatchResult(custom_id, None, None, None, "batch line has neither a response nor an error")
    status = response.get("status_code")
    raw_body = response.get("body")
    body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
    if status != 200:
        message = body.get("error", {}).get("message", "") if isinstance(body.get("error"), dict) else ""
        return BatchResult(custom_id, None, None, None, f"batch request failed: HTTP {status}: {message}")
    try:
        text = body["choices"][0]["message"]["content"]
        if not isinstance(text, str):
            raise TypeError(f"content is {type(text).__name__}")
    except (KeyError, IndexError, TypeError) as exc:
        return BatchResult(custom_id, None, None, None, f"malformed completion in the batch output: {exc}")
    raw_usage = body.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        return BatchResult(custom_id, text, prompt, completion, None)
    return BatchResult(custom_id, text, None, None, None)


def judgment_from(item: BatchItem, result: BatchResult, price: Price | None) -> Judgment:
    """The judgment of a successful result (INVALID, with the raw reply, when it holds no verdict line).

    Usage comes from the server; when it sent none, it is estimated the way ``--dry-run`` does, so costs are
    never silently 0.
    """
    if result.text is None:
        raise ValueError(f"result {result.custom_id} is a failure, not a judgment")
    prompt_tokens = result.prompt_tokens
    completion_tokens = result.completion_tokens
    if prompt_tokens is None or completion_tokens is None:
        prompt_tokens = estimate_tokens(int(item.request["prompt_chars"]), CHARS_PER_TOKEN)
        completion_tokens = estimate_tokens(len(result.text), CHARS_PER_TOKEN)
    verdict = parse_verdict_in_style(_style_of(item), result.text)
    rationale = result.text if result.text.strip() else "(the judge replied with empty text)"
    if verdict is Verdict.INVALID:
        rationale = f"{rationale}\n\n{NO_REASK_NOTE}"
    cost = price.cost(prompt_tokens, completion_tokens) if price is not None else 0.0
    return _judgment(item, verdict, rationale, cost, prompt_tokens, completion_tokens)


def _style_of(item: BatchItem) -> TemplateStyle:
    # Items submitted before the style was recorded were all read with our parser; they keep that reading.
    return TemplateStyle(item.request.get("template_style", TemplateStyle.QLORA_EVAL.value))


def identity_of(item: BatchItem) -> Judgment:
    """A record with the item's identifying fields only (judge, prompt, models), for recording a failure."""
    return _judgment(item, Verdict.INVALID, "(failed batch request)", 0.0, None, None)


def _judgment(
    item: BatchItem,
    verdict: Verdict,
    rationale: str,
    cost: float,
    prompt_tokens: int | None,
    completion_tokens: int | None,
) -> Judgment:
    req = item.request
    judgment = Judgment(
        judge=req["judge"],
        model_a=req["model_a"],
        model_b=req["model_b"],
        prompt_set=req["prompt_set"],
        prompt_id=req["prompt_id"],
        verdict=verdict,
        order=Order(req["order"]),
        template_hash=req["template_hash"],
        answer_a_key=req["answer_a_key"],
        answer_b_key=req["answer_b_key"],
        rationale=rationale,
        settings=req["settings"],
        cost_usd=cost,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )
    if judgment.judgment_key != item.judgment_key:
        raise ValueError(
            f"batch item {item.judgment_key} rebuilds to key {judgment.judgment_key}: the stored request is corrupt"
        )
    return judgment


def merge_results(files: Iterable[ParsedFile]) -> dict[str, BatchResult]:
    """One result per key across the output and error files (a success wins over a failure)."""
    merged: dict[str, BatchResult] = {}
    for parsed in files:
        for key, result in parsed.results.items():
            if key not in merged or merged[key].text is None:
                merged[key] = result
    return merged

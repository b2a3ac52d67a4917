"""``generate_answers``: every model answers every prompt once per sampling settings, into the store.

Resumable and loss-free: an answer whose key (:meth:`qlora_eval.types.Answer.key_for`: model, spec,
prompt set, prompt id, prompt hash, settings) is already stored is reused, and each batch's answers are
written in their own transaction as soon as they exist, so an interruption (Ctrl-C, a crash, a dead
server) loses at most the batch in flight. A model whose answers are all stored is not even loaded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from qlora_eval.models.base import ChatModel
from qlora_eval.models.factory import load_chat_model
from qlora_eval.models.spec import ModelSpec
from qlora_eval.models.threads import ThreadChoice
from qlora_eval.prompts import PromptSet
from qlora_eval.store import Store
from qlora_eval.types import Answer, GenerationSettings, Prompt, content_key

log = logging.getLogger(__name__)

ModelLoader = Callable[[ModelSpec], ChatModel]


@dataclass(frozen=True)
class GenerationReport:
    """What a generation run did.

    Attributes:
        generated: answers generated now.
        reused: answers found in the store and not generated again.
        answers: every (model, prompt) answer, models in the given order, prompts in set order.
        run_id: the store's run id of this run.
    """

    generated: int
    reused: int
    answers: tuple[Answer, ...]
    run_id: int


def _as_prompt_set(prompts: PromptSet | Sequence[Prompt]) -> PromptSet:
    if isinstance(prompts, PromptSet):
        return prompts
    if not prompts:
        raise ValueError("no prompts to answer")
    names = {p.prompt_set for p in prompts}
    digest = content_key([[p.prompt_set, p.prompt_id, p.content_hash] for p in prompts])
    # A bare list has no file: its version says so and its hash is that of its contents.
    return PromptSet("+".join(sorted(names)), "unversioned", digest, "in-memory list", tuple(prompts))


def generate_answers(
    store: Store,
    models: Sequence[ModelSpec],
    prompts: PromptSet | Sequence[Prompt],
    settings: GenerationSettings,
    *,
    batch_size: int = 8,
    stop: Sequence[str] = (),
    loader: ModelLoader = load_chat_model,
    progress: bool = True,
) -> GenerationReport:
    """Have each model answer each prompt, reusing stored answers.

    Args:
        store: where prompts, models, answers and the run record go.
        models: the models, by spec; their display name (``spec.name``) labels the answers.
        prompts: a loaded :class:`PromptSet` (its version and file hash are stored with its prompts and
            in the run record) or a plain list of prompts.
        settings: sampling settings (stored with every answer and part of its key).
        batch_size: conversations per ``generate`` call; every batch is stored when it finishes.
        stop: extra stop strings for every model.
        loader: turns a spec into a running backend (tests pass one returning a stand-in).
        progress: show a tqdm bar with tokens/s.

    Returns:
        Counts and the answers of every (model, prompt) pair.

    Raises:
        ConfigError, BackendError, MissingDependencyError: from loading or running a model; answers of
            finished batches are stored before the error propagates, and the run is marked failed.
        KeyboardInterrupt: the same, with the run marked interrupted.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    prompt_set = _as_prompt_set(prompts)
    names = [spec.name for spec in models]
    if len(set(names)) != len(names):
        raise ValueError(f"two models share a display name in {names}; give one a '?name=' option")
    settings_dict = settings.to_dict()
    store.add_prompts(prompt_set.prompts, set_version=prompt_set.version, set_hash=prompt_set.sha256)
    run_id = store.start_run(
        "generate",
        {
            "models": [spec.text for spec in models],
            "prompt_set": prompt_set.name,
            "prompt_set_version": prompt_set.version,
            "prompt_set_sha256": prompt_set.sha256,
            "prompts": len(prompt_set),
            "settings": settings_dict,
            "batch_size": batch_size,
        },
    )
    generated = reused = 0
    threads: dict[str, dict[str, int | str]] = {}  # model -> its CPU thread choice (recorded with the run)
    by_key: dict[str, Answer] = {}
    ordered_keys: list[str] = []
    status = "failed"
    try:
        for spec in models:
            store.add_model(spec.name, spec.text)
            keys = {
                p.prompt_id: Answer.key_for(
                    spec.name, spec.text, p.prompt_set, p.prompt_id, p.content_hash, settings_dict
                )
                for p in prompt_set.prompts
            }
            ordered_keys.extend(keys[p.prompt_id] for p in prompt_set.prompts)
            done = store.has_answers(keys.values())
            reused += len(done)
            for key in done:
                stored = store.get_answer(key)
                if stored is not None:
                    by_key[key] = stored
            todo = [p for p in prompt_set.prompts if keys[p.prompt_id] not in done]
            if not todo:
                log.info("%s: all %d answers already stored", spec.name, len(keys))
                continue
            # Longest first: similar lengths share a batch (less padding), and memory trouble shows early.
            todo.sort(key=lambda p: -sum(len(t.content) for t in p.turns))
            answers, choice = _answer_with(spec, todo, settings, batch_size, stop, loader, store, run_id, progress)
            if choice is not None:
                threads[spec.name] = choice.to_dict()
            for answer in answers:
                by_key[answer.answer_key] = answer
            generated += len(answers)
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        summary: dict[str, Any] = {"generated": generated, "reused": reused}
        if threads:
            summary["cpu_threads"] = threads
        store.finish_run(run_id, status, summary)
    return GenerationReport(
        generated=generated,
        reused=reused,
        answers=tuple(by_key[key] for key in ordered_keys),
        run_id=run_id,
    )


def _answer_with(
    spec: ModelSpec,
    todo: list[Prompt],
    settings: GenerationSettings,
    batch_size: int,
    stop: Sequence[str],
    loader: ModelLoader,
    store: Store,
    run_id: int,
    progress: bool,
) -> tuple[list[Answer], ThreadChoice | None]:
    model = loader(spec)
    choice = model.cpu_threads  # read before close(), which releases the model
    made: list[Answer] = []
    tokens = 0
    busy_s = 0.0
    bar = tqdm(total=len(todo), desc=spec.name, unit="answer", disable=not progress, dynamic_ncols=True)
    try:
        for begin in range(0, len(todo), batch_size):
            batch = todo[begin : begin + batch_size]
            start = time.perf_counter()
            completions = model.generate([p.turns for p in batch], settings, stop=stop)
            busy_s += time.perf_counter() - start
            answers = [
                Answer(
                    model=spec.name,
                    model_spec=spec.text,
                    prompt_set=p.prompt_set,
                    prompt_id=p.prompt_id,
                    prompt_hash=p.content_hash,
                    text=c.text,
                    settings=settings.to_dict(),
                    prompt_tokens=c.prompt_tokens,
                    answer_tokens=c.completion_tokens,
                    latency_s=c.latency_s,
                )
                for p, c in zip(batch, completions, strict=True)
            ]
            store.add_answers(answers, run_id=run_id)  # one transaction per batch: nothing finished is lost
            made.extend(answers)
            tokens += sum(c.completion_tokens for c in completions)
            bar.update(len(batch))
            bar.set_postfix(tok_s=f"{tokens / busy_s:.1f}" if busy_s > 0 else "n/a")
    finally:
        bar.close()
        model.close()
    return made, choice

"""MMLU: data loading, the two prompt formats, letter scoring and aggregation.

Two ways to evaluate, whose numbers differ and must not be mixed:

* ``qlora`` mode reproduces the QLoRA repository's evaluation: the prompt is the BOS token
  followed by the Hendrycks-style text ("... about  {subject}.\\n\\n" with two spaces, shots as
  "question\\nA. ..\\nAnswer: X\\n\\n"), the answer letters are the tokens of "A".."D" and the
  headline number is the macro average over subjects.
* ``harness`` mode reproduces lm-evaluation-harness's ``mmlu`` task: "... about {subject}.\\n\\n",
  the first 5 ``dev`` examples as shots joined by "\\n\\n", no BOS, the continuations " A".." D",
  and the micro average over questions.

Both score a question by the log-likelihood of each answer's continuation after "Answer:"; for
every tokenizer where the continuation is one token (QLoRA always, the harness for Llama and
GPT-2 style tokenizers) that is the next-token distribution after "Answer:", read in one pass.
Prompts are batched with left padding and cut from the left, so "Answer:" is never lost.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from qlora_eval.errors import ConfigError, InputError

LETTERS = ("A", "B", "C", "D")


class Mode(Enum):
    """Which reference evaluation to reproduce."""

    QLORA = "qlora"
    HARNESS = "harness"


# Hendrycks et al. (2021), categories.py: subject -> one of the four supercategories.
_STEM = "STEM"
_HUM = "humanities"
_SOC = "social sciences"
_OTHER = "other (business, health, misc.)"
SUPERCATEGORIES: dict[str, str] = {
    "abstract_algebra": _STEM,
    "anatomy": _OTHER,
    "astronomy": _STEM,
    "business_ethics": _OTHER,
    "clinical_knowledge": _OTHER,
    "college_biology": _STEM,
    "college_chemistry": _STEM,
    "college_computer_science": _STEM,
    "college_mathematics": _STEM,
    "college_medicine": _OTHER,
    "college_physics": _STEM,
    "computer_security": _STEM,
    "conceptual_physics": _STEM,
    "econometrics": _SOC,
    "electrical_engineering": _STEM,
    "elementary_mathematics": _STEM,
    "formal_logic": _HUM,
    "global_facts": _OTHER,
    "high_school_biology": _STEM,
    "high_school_chemistry": _STEM,
    "high_school_computer_science": _STEM,
    "high_school_european_history": _HUM,
    "high_school_geography": _SOC,
    "high_school_government_and_politics": _SOC,
    "high_school_macroeconomics": _SOC,
    "high_school_mathematics": _STEM,
    "high_school_microeconomics": _SOC,
    "high_school_physics": _STEM,
    "high_school_psychology": _SOC,
    "high_school_statistics": _STEM,
    "high_school_us_history": _HUM,
    "high_school_world_history": _HUM,
    "human_aging": _OTHER,
    "human_sexuality": _SOC,
    "international_law": _HUM,
    "jurisprudence": _HUM,
    "logical_fallacies": _HUM,
    "machine_learning": _STEM,
    "management": _OTHER,
    "marketing": _OTHER,
    "medical_genetics": _OTHER,
    "miscellaneous": _OTHER,
    "moral_disputes": _HUM,
    "moral_scenarios": _HUM,
    "nutrition": _OTHER,
    "philosophy": _HUM,
    "prehistory": _HUM,
    "professional_accounting": _OTHER,
    "professional_law": _HUM,
    "professional_medicine": _OTHER,
    "professional_psychology": _SOC,
    "public_relations": _SOC,
    "security_studies": _SOC,
    "sociology": _SOC,
    "us_foreign_policy": _SOC,
    "virology": _OTHER,
    "world_religions": _HUM,
}


@dataclass(frozen=True)
class MmluItem:
    """One question.

    Attributes:
        subject: the subject with underscores (``abstract_algebra``).
        question: the question text.
        choices: the four options.
        answer: index of the right option (0..3).
        qlora_input: the verbatim prompt of a QLoRA-format file (used as is in qlora mode).
        source: file or dataset the item came from, and its 1-based ``line`` (row) there.
    """

    subject: str
    question: str
    choices: tuple[str, str, str, str]
    answer: int
    qlora_input: str | None = None
    source: str = ""
    line: int = 0


# The last question of a QLoRA/Hendrycks prompt: "...\n\n{question}\nA. a\nB. b\nC. c\nD. d\nAnswer:".
_LAST_QUESTION = re.compile(
    r"\A(?P<q>.*)\nA\. (?P<a>.*?)\nB\. (?P<b>.*?)\nC\. (?P<c>.*?)\nD\. (?P<d>.*?)\nAnswer:\Z", re.DOTALL
)
_SHOT_END = re.compile(r"\nAnswer: [ABCD]\n\n")


def shots_in_qlora_input(text: str) -> int:
    """How many answered examples a QLoRA-format prompt carries before its question."""
    return len(_SHOT_END.findall(text))


def _parse_qlora_record(record: Any, source: str, line: int) -> MmluItem:
    if not isinstance(record, dict):
        raise InputError("expected a JSON object with 'subject', 'input', 'output'", source=source, line=line)
    for key in ("subject", "input", "output"):
        if not isinstance(record.get(key), str):
            raise InputError(f"field {key!r} is missing or not a string", source=source, line=line)
    subject = record["subject"].strip()
    if subject not in SUPERCATEGORIES:
        raise InputError(
            f"unknown MMLU subject {subject!r} (expected one of the 57 subjects)", source=source, line=line
        )
    output = record["output"].strip()
    if output not in LETTERS:
        raise InputError(f"field 'output' must be one of A, B, C, D, got {output!r}", source=source, line=line)
    text = record["input"]
    body = text.split("\n\n", 1)[1] if "\n\n" in text else text
    # Shots end with "Answer: X\n\n"; the question being asked follows the last of them.
    tail = _SHOT_END.split(body)[-1]
    match = _LAST_QUESTION.search(tail)
    if match is None:
        raise InputError(
            "field 'input' does not end with 'question\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\nAnswer:'",
            source=source,
            line=line,
        )
    choices = (match["a"], match["b"], match["c"], match["d"])
    return MmluItem(
        subject=subject,
        question=match["q"],
        choices=choices,
        answer=LETTERS.index(output),
        qlora_input=text,
        source=source,
        line=line,
    )


def load_qlora_file(path: Path) -> list[MmluItem]:
    """Read a QLoRA-format MMLU file: JSON lines or one JSON array of ``{subject, input, output}``.

    Raises:
        InputError: naming the file and line of a malformed record.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the MMLU file: {exc}", source=source) from exc
    records: list[tuple[int, Any]] = []
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", source=source, line=exc.lineno) from exc
        records = [(index + 1, record) for index, record in enumerate(data)]
    else:
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                records.append((number, json.loads(raw)))
            except json.JSONDecodeError as exc:
                raise InputError(f"invalid JSON: {exc.msg}", source=source, line=number) from exc
    if not records:
        raise InputError("the file holds no MMLU questions", source=source)
    return [_parse_qlora_record(record, source, number) for number, record in records]


def items_from_rows(rows: Sequence[dict[str, Any]], source: str) -> list[MmluItem]:
    """Turn ``cais/mmlu`` rows (``question``, ``subject``, ``choices``, ``answer`` 0..3) into items."""
    items = []
    for index, row in enumerate(rows, start=1):
        subject, choices, answer = row.get("subject"), row.get("choices"), row.get("answer")
        if not isinstance(subject, str) or subject not in SUPERCATEGORIES:
            raise InputError(f"unknown or missing MMLU subject {subject!r}", source=source, line=index)
        if not isinstance(row.get("question"), str):
            raise InputError("field 'question' is missing or not a string", source=source, line=index)
        if not isinstance(choices, list | tuple) or len(choices) != 4:
            raise InputError("field 'choices' must be a list of 4 strings", source=source, line=index)
        if not isinstance(answer, int) or not 0 <= answer <= 3:
            raise InputError(f"field 'answer' must be 0..3, got {answer!r}", source=source, line=index)
        items.append(
            MmluItem(
                subject=subject,
                question=row["question"],
                choices=(str(choices[0]), str(choices[1]), str(choices[2]), str(choices[3])),
                answer=answer,
                source=source,
                line=index,
            )
        )
    return items


def load_hub_split(dataset: str, split: str) -> list[MmluItem]:
    """Load one split of ``cais/mmlu`` (config ``all``) through ``datasets``.

    ``dataset`` is a hub id, or a local folder holding the hub layout's parquet files
    (``**/{split}-*.parquet`` or ``**/{split}.parquet``), which is read without the network.
    """
    from datasets import load_dataset

    folder = Path(dataset)
    if folder.is_dir():
        files = sorted({*folder.glob(f"**/{split}-*.parquet"), *folder.glob(f"**/{split}.parquet")})
        if not files:
            raise InputError(f"no '{split}' parquet files in the dataset folder", source=dataset)
        data = load_dataset("parquet", data_files=[str(f) for f in files], split="train")
    else:
        try:
            data = load_dataset(dataset, "all", split=split)
        except Exception as exc:  # datasets raises many types (network, missing config, ...)
            raise InputError(f"cannot load split {split!r} of {dataset!r} (config 'all'): {exc}") from exc
    return items_from_rows([dict(row) for row in data], f"{dataset}[{split}]")


def _subject_words(subject: str) -> str:
    return subject.replace("_", " ")


def _question_block(item: MmluItem) -> str:
    return item.question + "".join(
        f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, item.choices, strict=True)
    )


def qlora_prompt(item: MmluItem, shots: Sequence[MmluItem]) -> str:
    """The QLoRA/Hendrycks prompt text (without BOS), built from the parts.

    The header has two spaces before the subject because Hendrycks' ``format_subject``
    returns the subject with a leading space and the template adds another.
    """
    header = f"The following are multiple choice questions (with answers) about  {_subject_words(item.subject)}.\n\n"
    examples = "".join(f"{_question_block(s)}\nAnswer: {LETTERS[s.answer]}\n\n" for s in shots)
    return header + examples + _question_block(item) + "\nAnswer:"


def harness_prompt(item: MmluItem, shots: Sequence[MmluItem]) -> str:
    """The lm-evaluation-harness ``mmlu`` prompt (its description, first-n shots, "\\n\\n" delimiter)."""

    def text(x: MmluItem) -> str:
        return (
            x.question.strip()
            + "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, x.choices, strict=True))
            + "\nAnswer:"
        )

    description = (
        f"The following are multiple choice questions (with answers) about {_subject_words(item.subject)}.\n\n"
    )
    examples = "".join(f"{text(s)} {LETTERS[s.answer]}\n\n" for s in shots)
    return description + examples + text(item)


@dataclass(frozen=True)
class LetterTokens:
    """The token continuation that stands for each answer, A to D.

    QLoRA's are single tokens. The harness's " A" is one token for most tokenizers, but some
    split it (e.g. ["Ġ", "C"]); scoring then sums the log-probabilities along the continuation,
    as the harness's log-likelihood does.
    """

    continuations: tuple[tuple[int, ...], ...]

    def prefixes(self) -> list[tuple[int, ...]]:
        """Every proper prefix of a continuation (always including the empty one), shortest first."""
        found = {c[:j] for c in self.continuations for j in range(len(c))}
        return sorted(found, key=lambda p: (len(p), p))


@dataclass(frozen=True)
class EncodedPrompts:
    """Token ids of every prompt and the answer continuations to score after them."""

    ids: list[list[int]]
    letters: LetterTokens


def letter_tokens(tokenizer: Any, mode: Mode) -> LetterTokens:
    """The answers' token continuations as the reference implementation scores them.

    qlora: the first token of ``tokenizer("A", add_special_tokens=False)`` (QLoRA's ``abcd_idx``).
    harness: the continuation " A" of "Answer:", split as the harness does (``encode(ctx + cont)``
    minus ``encode(ctx)``).

    Raises:
        ConfigError: when the tokenizer merges the letter into "Answer:" or two letters coincide.
    """
    continuations: list[tuple[int, ...]] = []
    for letter in LETTERS:
        if mode is Mode.QLORA:
            continuations.append((tokenizer(letter, add_special_tokens=False).input_ids[0],))
            continue
        context = tokenizer("Answer:", add_special_tokens=False).input_ids
        whole = tokenizer("Answer: " + letter, add_special_tokens=False).input_ids
        if whole[: len(context)] != context or len(whole) == len(context):
            raise ConfigError(f"this tokenizer does not encode 'Answer: {letter}' as 'Answer:' followed by more tokens")
        continuations.append(tuple(whole[len(context) :]))
    if len(set(continuations)) != 4 or any(a[: len(b)] == b for a in continuations for b in continuations if a != b):
        raise ConfigError(f"the tokenizer's answer continuations {continuations} are not four distinct non-prefixes")
    return LetterTokens(continuations=tuple(continuations))


def encode_prompts(tokenizer: Any, prompts: Sequence[str], mode: Mode) -> EncodedPrompts:
    """Tokenize prompts the way the chosen reference does (qlora: BOS + text; harness: no BOS)."""
    bos = [tokenizer.bos_token_id] if mode is Mode.QLORA and tokenizer.bos_token_id is not None else []
    ids = [bos + tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
    return EncodedPrompts(ids=ids, letters=letter_tokens(tokenizer, mode))


def truncate_left(ids: Sequence[int], max_length: int) -> list[int]:
    """Keep the last ``max_length`` tokens: the question's end ("Answer:") always survives."""
    if max_length < 1:
        raise ConfigError(f"max length must be >= 1, got {max_length}")
    return list(ids[-max_length:])


def left_pad(batch: Sequence[Sequence[int]], pad_id: int) -> tuple[list[list[int]], list[list[int]]]:
    """Pad on the left so every row's last token is its prompt's last token; returns (ids, attention mask)."""
    width = max(len(row) for row in batch)
    ids = [[pad_id] * (width - len(row)) + list(row) for row in batch]
    mask = [[0] * (width - len(row)) + [1] * len(row) for row in batch]
    return ids, mask


def next_token_logprobs(
    model: Any,
    sequences: Sequence[Sequence[int]],
    wanted: Sequence[int],
    *,
    pad_id: int,
    batch_size: int = 8,
    max_length: int = 2048,
    progress: Callable[[float], None] | None = None,
) -> list[list[float]]:
    """Log-probabilities of the ``wanted`` tokens right after each sequence.

    Sequences are sorted by length (less padding), cut from the left to ``max_length``, padded on
    the left; position ids follow the attention mask so padding does not shift positions (RoPE is
    shift-invariant, but models with absolute position embeddings are not).

    Returns:
        One list (in ``wanted`` order) per sequence, in input order.
    """
    import torch

    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    wanted_ids = torch.tensor(list(wanted), device=device)
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    out: list[list[float]] = [[] for _ in sequences]
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            rows = [truncate_left(sequences[i], max_length) for i in chunk]
            ids, mask = left_pad(rows, pad_id)
            input_ids = torch.tensor(ids, device=device)
            attention = torch.tensor(mask, device=device)
            positions = (attention.cumsum(-1) - 1).clamp(min=0)
            logits = model(
                input_ids=input_ids, attention_mask=attention, position_ids=positions, logits_to_keep=1
            ).logits[:, -1, :]
            logprobs = torch.log_softmax(logits.float(), dim=-1).index_select(-1, wanted_ids).cpu().tolist()
            for index, row in zip(chunk, logprobs, strict=True):
                out[index] = row
            if progress is not None:
                progress(len(chunk))
    return out


def score_letters(
    model: Any,
    encoded: EncodedPrompts,
    *,
    pad_id: int,
    batch_size: int = 8,
    max_length: int = 2048,
    progress: Callable[[float], None] | None = None,
) -> list[list[float]]:
    """Log-likelihood of each answer's continuation after each prompt.

    One batched pass per distinct continuation prefix: a single pass (the next-token
    distribution after "Answer:") when every answer is one token.

    Returns:
        ``[loglik A, loglik B, loglik C, loglik D]`` per prompt, in input order.
    """
    continuations = encoded.letters.continuations
    prefixes = encoded.letters.prefixes()
    # logprob[prefix][prompt index][token] for the tokens that follow ``prefix`` in some continuation
    logprob: dict[tuple[int, ...], list[dict[int, float]]] = {}
    for prefix in prefixes:
        following = sorted(
            {c[len(prefix)] for c in continuations if len(c) > len(prefix) and c[: len(prefix)] == prefix}
        )
        sequences = [ids + list(prefix) for ids in encoded.ids]

        def step(done: float) -> None:
            if progress is not None:
                progress(done / len(prefixes))

        rows = next_token_logprobs(
            model, sequences, following, pad_id=pad_id, batch_size=batch_size, max_length=max_length, progress=step
        )
        logprob[prefix] = [dict(zip(following, row, strict=True)) for row in rows]
    return [
        [sum(logprob[c[:j]][i][c[j]] for j in range(len(c))) for c in continuations] for i in range(len(encoded.ids))
    ]


@dataclass(frozen=True)
class GroupScore:
    """Accuracy of a group of questions."""

    accuracy: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {"accuracy": self.accuracy, "n": self.n}


@dataclass(frozen=True)
class MmluResult:
    """The figures ``qlora-eval mmlu --json`` writes.

    ``accuracy`` is the micro average (harness's headline), ``macro_accuracy`` the mean over
    subjects (QLoRA's headline); ``primary`` names the one that matches ``mode``.
    """

    accuracy: float
    macro_accuracy: float
    n: int
    subjects: dict[str, GroupScore]
    supercategories: dict[str, GroupScore]
    mode: Mode
    shots: int

    @property
    def primary(self) -> str:
        return "macro_accuracy" if self.mode is Mode.QLORA else "accuracy"

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "macro_accuracy": self.macro_accuracy,
            "primary": self.primary,
            "n": self.n,
            "subjects": {k: v.to_dict() for k, v in sorted(self.subjects.items())},
            "supercategories": {k: v.to_dict() for k, v in sorted(self.supercategories.items())},
            "mode": self.mode.value,
            "shots": self.shots,
        }


def aggregate(items: Sequence[MmluItem], predictions: Sequence[int], mode: Mode, shots: int) -> MmluResult:
    """Micro/macro accuracy, per subject and per supercategory."""
    if len(items) != len(predictions) or not items:
        raise ValueError("need one prediction per item and at least one item")
    by_subject: dict[str, list[bool]] = {}
    by_super: dict[str, list[bool]] = {}
    for item, pred in zip(items, predictions, strict=True):
        hit = item.answer == pred
        by_subject.setdefault(item.subject, []).append(hit)
        by_super.setdefault(SUPERCATEGORIES[item.subject], []).append(hit)
    subjects = {s: GroupScore(sum(h) / len(h), len(h)) for s, h in by_subject.items()}
    supers = {s: GroupScore(sum(h) / len(h), len(h)) for s, h in by_super.items()}
    hits = sum(item.answer == pred for item, pred in zip(items, predictions, strict=True))
    return MmluResult(
        accuracy=hits / len(items),
        macro_accuracy=sum(g.accuracy for g in subjects.values()) / len(subjects),
        n=len(items),
        subjects=subjects,
        supercategories=supers,
        mode=mode,
        shots=shots,
    )


def build_prompts(items: Sequence[MmluItem], mode: Mode, shots: int, dev: Sequence[MmluItem] | None) -> list[str]:
    """The prompt text of every item.

    QLoRA-format items (``qlora_input`` set) are used verbatim in qlora mode, and carry their
    shots inside; other items take the first ``shots`` dev questions of their subject.

    Raises:
        ConfigError: when shots are asked for but no dev split is available, or a QLoRA file's
            built-in shot count differs from ``shots``.
    """
    if shots not in (0, 5):
        raise ConfigError(f"--shots must be 0 or 5, got {shots}")
    dev_by_subject: dict[str, list[MmluItem]] = {}
    for d in dev or []:
        dev_by_subject.setdefault(d.subject, []).append(d)
    prompts = []
    for item in items:
        if mode is Mode.QLORA and item.qlora_input is not None:
            found = shots_in_qlora_input(item.qlora_input)
            if found != shots:
                raise ConfigError(
                    f"{item.source}:{item.line}: this QLoRA-format prompt carries {found} shots but --shots is "
                    f"{shots}; pass --shots {found} (QLoRA's five-shot prompts are five_shot_mmlu_*.json)"
                )
            prompts.append(item.qlora_input)
            continue
        examples: list[MmluItem] = []
        if shots:
            examples = dev_by_subject.get(item.subject, [])[:shots]
            if len(examples) < shots:
                raise ConfigError(
                    f"{shots}-shot prompts need {shots} dev questions of {item.subject!r}, found {len(examples)}; "
                    "use --dataset cais/mmlu (its 'dev' split) or --shots 0"
                )
        builder = qlora_prompt if mode is Mode.QLORA else harness_prompt
        prompts.append(builder(item, examples))
    return prompts


def evaluate(
    model: Any,
    tokenizer: Any,
    items: Sequence[MmluItem],
    *,
    mode: Mode,
    shots: int,
    dev: Sequence[MmluItem] | None = None,
    batch_size: int = 8,
    max_length: int = 2048,
    progress: Callable[[float], None] | None = None,
) -> MmluResult:
    """Score ``items`` with ``model``/``tokenizer`` and aggregate.

    Args:
        model: a causal LM (transformers), any device.
        tokenizer: its tokenizer.
        items: the questions.
        mode: qlora or harness prompt format and tokenization.
        shots: 0 or 5 examples before each question.
        dev: questions to draw shots from (``cais/mmlu`` ``dev`` split), needed for 5 shots
            unless the items are QLoRA five-shot prompts.
        batch_size: prompts per forward pass.
        max_length: prompts longer than this lose tokens from the left.
        progress: called with the (fractional) number of prompts done after each batch.
    """
    prompts = build_prompts(items, mode, shots, dev)
    encoded = encode_prompts(tokenizer, prompts, mode)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise ConfigError("the tokenizer has neither a pad nor an eos token to pad batches with")
    logits = score_letters(
        model, encoded, pad_id=pad_id, batch_size=batch_size, max_length=max_length, progress=progress
    )
    predictions = [max(range(4), key=row.__getitem__) for row in logits]
    return aggregate(items, predictions, mode, shots)

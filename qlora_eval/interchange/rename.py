"""``--rename OLD=NEW``: readable model names for any import format, applied to a whole batch after reading.

An answer's key includes its model name (and the ``imported:<model>`` spec), so renaming a model gives its
answers new keys; judgments and answer ids that point at those answers are re-pointed at the new keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from qlora_eval.errors import ConfigError, InputError, check_name
from qlora_eval.interchange.answers import IMPORTED_SPEC_PREFIX
from qlora_eval.interchange.base import Imported
from qlora_eval.types import Answer, Judgment, Order


def parse_renames(values: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Parse ``OLD=NEW`` strings (one per ``--rename``).

    Raises:
        ConfigError: a value without ``=``, an empty side, one OLD renamed twice, or two OLDs given one NEW.
    """
    pairs: dict[str, str] = {}
    for value in values:
        old, sep, new = value.partition("=")
        old, new = old.strip(), new.strip()
        if not sep or not old or not new:
            raise ConfigError(f"--rename {value!r}: expected OLD=NEW, e.g. --rename answer-gpt35=chatgpt")
        check_name(new, "model name", where="--rename")
        if old in pairs:
            raise ConfigError(f"--rename: {old!r} is renamed twice ({pairs[old]!r} and {new!r}); keep one")
        pairs[old] = new
    targets = list(pairs.values())
    doubled = sorted({t for t in targets if targets.count(t) > 1})
    if doubled:
        raise ConfigError(f"--rename gives two models the same new name {', '.join(map(repr, doubled))}")
    return tuple(pairs.items())


def apply_renames(batch: Imported, renames: tuple[tuple[str, str], ...]) -> Imported:
    """The batch with models renamed.

    Raises:
        InputError: an OLD no record names (listing the models read), a NEW that is already a model of the
            input, or a judgment that points at an answer of a renamed model that is not in this import.
    """
    if not renames:
        return batch
    mapping = dict(renames)
    known = set(batch.models()) | {i.model for i in batch.answer_ids}
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise InputError(
            f"--rename names model(s) {', '.join(map(repr, unknown))} that the input does not have; "
            f"its models are {', '.join(sorted(known)) or 'none'}"
        )
    clashes = sorted((set(mapping.values()) & known) - set(mapping))
    if clashes:
        raise InputError(
            f"--rename target(s) {', '.join(map(repr, clashes))} already name a model of the input; pick another name"
        )
    answers = tuple(_renamed_answer(a, mapping) for a in batch.answers)
    keys = {old.answer_key: new.answer_key for old, new in zip(batch.answers, answers, strict=True)}
    judgments = tuple(_renamed_judgment(j, mapping, keys) for j in batch.judgments)
    answer_ids = tuple(
        replace(i, model=mapping.get(i.model, i.model), answer_key=keys.get(i.answer_key, i.answer_key))
        for i in batch.answer_ids
    )
    return replace(batch, answers=answers, judgments=judgments, answer_ids=answer_ids)


def _renamed_answer(answer: Answer, mapping: Mapping[str, str]) -> Answer:
    new = mapping.get(answer.model)
    if new is None:
        return answer
    spec = IMPORTED_SPEC_PREFIX + new if answer.model_spec == IMPORTED_SPEC_PREFIX + answer.model else answer.model_spec
    return replace(answer, model=new, model_spec=spec)


def _renamed_judgment(judgment: Judgment, mapping: Mapping[str, str], keys: Mapping[str, str]) -> Judgment:
    if judgment.model_a not in mapping and judgment.model_b not in mapping:
        return judgment
    for model, key in ((judgment.model_a, judgment.answer_a_key), (judgment.model_b, judgment.answer_b_key)):
        if model in mapping and key is not None and key not in keys:
            raise InputError(
                f"--rename {model}={mapping[model]}: a judgment of prompt {judgment.prompt_set}/{judgment.prompt_id} "
                "points at an answer that is not in this import, and renaming would cut that link; "
                "import the answers in the same command or keep the name"
            )
    model_a = mapping.get(judgment.model_a, judgment.model_a)
    model_b = mapping.get(judgment.model_b, judgment.model_b)
    return replace(
        judgment,
        model_a=model_a,
        model_b=model_b,
        # The order is the shown order against the alphabetical one: new names may sort the other way round.
        # The verdict is about the shown order (A = shown first), which a rename does not change.
        order=Order.of(model_a, model_b),
        answer_a_key=keys.get(judgment.answer_a_key, judgment.answer_a_key) if judgment.answer_a_key else None,
        answer_b_key=keys.get(judgment.answer_b_key, judgment.answer_b_key) if judgment.answer_b_key else None,
    )

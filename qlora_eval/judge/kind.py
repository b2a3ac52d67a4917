"""What a judge kind is: the one-screen contract every kind (``openai``, ``local``, ...) fills in.

A kind module defines one :class:`JudgeKind` value named ``KIND``; :mod:`qlora_eval.judge.registry` lists
the kind modules in one table. Nothing else in the package switches on the kind: spec parsing, the settings
that key every judgment, prices, estimates and building the judge all go through these fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qlora_eval.judge.base import Judge
    from qlora_eval.judge.options import JudgeOptions
    from qlora_eval.judge.pricing import Price, PriceTable


@dataclass(frozen=True)
class JudgeSpec:
    """A parsed judge spec (``KIND:TARGET[?options]``).

    Attributes:
        text: the spec as written.
        kind: the registered kind it names.
        target: the model name sent to the server (openai) or the model spec to load (local).
        base_url: the server URL, for kinds that call a server (None means the kind's default).
    """

    text: str
    kind: JudgeKind
    target: str
    base_url: str | None = None

    @property
    def judge_id(self) -> str:
        """What every judgment records as its judge: the spec without the server address."""
        return f"{self.kind.name}:{self.target}"

    def settings(self, options: JudgeOptions) -> dict[str, Any]:
        """The settings recorded with (and keying) every judgment of this judge under ``options``."""
        return self.kind.settings(self, options)


@dataclass(frozen=True)
class JudgeKind:
    """One kind of judge.

    Attributes:
        name: the spec prefix (``openai``).
        grammar: one line for the spec grammar (``openai:MODEL[?base_url=URL]   what it is``).
        parse: ``(spec text, text after "NAME:") -> JudgeSpec``; raises ConfigError. Loads nothing.
        settings: ``(spec, options) -> settings``: everything that changes verdicts; the single source of the
            never-pay-twice key's settings part (the judge records exactly these).
        price: ``(spec, price table) -> Price | None``: dollars per token (None: the table lacks the model).
        completion_tokens: ``options -> int``: the most completion tokens one call can cost (for estimates).
        build: ``(spec, options, price) -> Judge``: load the model / create the client.
        runs_locally: True when verdicts come from a model in this process (free; reports say so).
        report_note: what a report's judge box says about how this kind decides and its known biases
            (empty: nothing beyond the judge's name and settings).
    """

    name: str
    grammar: str
    parse: Callable[[str, str], JudgeSpec]
    settings: Callable[[JudgeSpec, JudgeOptions], dict[str, Any]]
    price: Callable[[JudgeSpec, PriceTable], Price | None]
    completion_tokens: Callable[[JudgeOptions], int]
    build: Callable[[JudgeSpec, JudgeOptions, Price | None], Judge]
    runs_locally: bool
    report_note: str = ""

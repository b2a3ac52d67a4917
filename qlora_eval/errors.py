"""The one exception hierarchy of qlora-eval (L0: stdlib only).

Every error says what went wrong *and* what to do about it; the CLI prints the message
and exits non-zero without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class QloraEvalError(Exception):
    """Base class for every error this package raises on purpose."""


class InputError(QloraEvalError):
    """Bad user input: a file, a line, a field or a value that cannot be used.

    Attributes:
        source: the file (or other source) the bad input came from, if any.
        line: the 1-based line number inside ``source``, if known.
    """

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(where + message)


class ConfigError(InputError):
    """A config (YAML, CLI options, a model spec) that does not validate."""


class StoreError(QloraEvalError):
    """The SQLite store cannot be opened, migrated or written."""


class MissingDependencyError(QloraEvalError):
    """An optional package is needed; the message carries the install command."""

    def __init__(self, package: str, install: str, purpose: str) -> None:
        self.package = package
        self.install = install
        super().__init__(f"{purpose} needs the package '{package}'. Install it with: {install}")


class BackendError(QloraEvalError):
    """A model or judge backend failed (unreachable server, exhausted retries, bad response)."""


class ConvergenceError(QloraEvalError):
    """A numerical fit (Bradley-Terry) did not converge."""


class TrainingDivergedError(QloraEvalError):
    """Training produced a non-finite loss (NaN or infinity); the message says at which step and what to try."""


class InternalError(QloraEvalError):
    """An invariant of qlora-eval itself broke (a bug, not bad input); the message says which, please report it."""


class DeviceError(QloraEvalError):
    """The requested work needs hardware this machine does not have (for example a CUDA GPU)."""


def unknown_names_error(what: str, unknown: Sequence[str], known: Iterable[str], remedy: str = "") -> InputError:
    """The error for names that match nothing (a typo is an error): each with its nearest known names (difflib).

    Args:
        what: what the names are, e.g. ``"model"`` (the message says "no answers or verdicts of model ...").
        unknown: the names that matched nothing.
        known: the names that exist.
        remedy: an extra sentence on what to do.
    """
    import difflib

    pool = sorted(set(known))
    parts = []
    for name in unknown:
        near = difflib.get_close_matches(name, pool, n=3, cutoff=0.5) or _containing(name, pool)[:3]
        parts.append(f"{name!r}" + (f" (did you mean {', '.join(repr(n) for n in near)}?)" if near else ""))
    shown = ", ".join(pool[:20]) + (f" and {len(pool) - 20} more" if len(pool) > 20 else "")
    return InputError(
        f"unknown {what} {'; '.join(parts)}; known: {shown or 'none'}" + (f". {remedy}" if remedy else "")
    )


def nearest_names(unknown: Sequence[str], known: Iterable[str]) -> str:
    """``" (did you mean 'x' for 'y'?)"``: the nearest known name of each unknown one (difflib); "" if none is near."""
    import difflib

    pool = sorted(set(known))
    hints = []
    for name in unknown:
        near = difflib.get_close_matches(name, pool, n=1, cutoff=0.5) or _containing(name, pool)[:1]
        if near:
            hints.append(f"{near[0]!r} for {name!r}")
    return f" (did you mean {', '.join(hints)}?)" if hints else ""


def _unsafe_char(char: str) -> bool:
    """Control characters (C0, DEL, C1) and the bidi embeddings, overrides and isolates (U+202A-202E, U+2066-2069)."""
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069


def check_name(name: str, what: str, *, where: str | None = None, line: int | None = None) -> str:
    """Refuse a model or rater name that could forge output: control characters (a newline, a tab, ESC ...) or
    bidi overrides/isolates, which let a name start a fake Markdown heading or reverse the text shown after it.

    The one validator for names from every door: interchange imports, the CLI (``--models``, ``--model``,
    ``--rename``, ``raters add``) and tournament YAML.

    Args:
        name: the name.
        what: what it names, for the message (``"model name"``, ``"rater name"``).
        where: the file or option it came from (``"--models"``, a path).
        line: the line of ``where``, if a file.

    Returns:
        ``name`` unchanged.

    Raises:
        InputError: naming the first bad character by its code point, and where the name came from.
    """
    bad = next((c for c in name if _unsafe_char(c)), None)
    if bad is not None:
        raise InputError(
            f"{what} {name!r} contains the character U+{ord(bad):04X} (a control character or bidi override); "
            "names must be plain printable text: rename it",
            source=where,
            line=line,
        )
    return name


def escape_unsafe(text: str) -> str:
    """``text`` with every control or bidi character shown as ``\\uXXXX`` (for output built from untrusted files)."""
    return "".join(f"\\u{ord(c):04x}" if _unsafe_char(c) else c for c in text)


def _containing(name: str, pool: Sequence[str]) -> list[str]:
    """Known names that contain ``name`` (a shortened long name, e.g. ``7b-guanaco``), shortest first."""
    folded = name.casefold()
    return sorted((p for p in pool if folded in p.casefold()), key=len) if len(name) >= 3 else []

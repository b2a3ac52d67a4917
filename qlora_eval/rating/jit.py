"""``cached_njit``: numba's ``njit(cache=True)`` for the rating kernels, with an explicit fallback.

With ``cache=True`` a fresh process loads the machine code compiled by an earlier one from numba's
on-disk cache (about 0.1 s) instead of compiling it again (several seconds per kernel module). numba
looks for a writable cache folder in this order: ``NUMBA_CACHE_DIR`` when set, the ``__pycache__``
next to the module, then a per-user cache folder; when none is usable it refuses at decoration time
("no locator available"). That would make the rating engine unusable on a read-only install with no
writable home, so :func:`cached_njit` then compiles without a cache and logs a warning that says so
and names the remedy; a process then pays the compile time every run, with the same results.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import numba

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def cached_njit(**options: Any) -> Callable[[F], F]:
    """``numba.njit(cache=True, **options)``; without a usable cache folder, ``njit(**options)`` and a warning."""

    def decorate(function: F) -> F:
        try:
            return numba.njit(cache=True, **options)(function)
        except RuntimeError as exc:
            if "no locator available" not in str(exc):
                raise
            log.warning(
                "numba cannot cache the compiled %s (no writable cache folder): every process compiles it "
                "again (several seconds); set NUMBA_CACHE_DIR to a writable folder to cache it",
                function.__qualname__,
            )
            return numba.njit(**options)(function)

    return decorate

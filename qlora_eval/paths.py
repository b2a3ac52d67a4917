"""The project's own settings, read in one place (L1): where caches and the real prompt files live.

``QLORA_EVAL_CACHE``: the cache folder (downloaded prompt sets, models converted from GGUF); default
``~/.cache/qlora-eval``. ``QLORA_EVAL_DATA``: a folder holding the real prompt sets' files (e.g.
``../shared/data``), used when no ``--data-dir`` is given. Settings that the ecosystem owns stay with it
(``OPENAI_API_KEY`` is read by the OpenAI client, ``HF_HOME`` by the Hugging Face libraries).
"""

from __future__ import annotations

import os
from pathlib import Path

from qlora_eval.errors import InputError

CACHE_ENV = "QLORA_EVAL_CACHE"
DATA_ENV = "QLORA_EVAL_DATA"


def cache_dir() -> Path:
    """The cache folder: ``$QLORA_EVAL_CACHE`` or ``~/.cache/qlora-eval``."""
    value = os.environ.get(CACHE_ENV)
    return Path(value) if value else Path.home() / ".cache" / "qlora-eval"


def data_dir(explicit: Path | None = None) -> Path | None:
    """The folder of the real prompt files: ``explicit`` (``--data-dir``), else ``$QLORA_EVAL_DATA``, else None."""
    if explicit is not None:
        return explicit
    value = os.environ.get(DATA_ENV)
    return Path(value) if value else None


def read_text(path: str | Path, *, expected: str = "") -> str:
    """A text file's content decoded as UTF-8, or an InputError naming the file (never a traceback).

    Every file the CLI reads as text goes through here, so bytes that are not UTF-8 give the same clear
    message with the byte offset of the first bad byte.

    Args:
        path: the file.
        expected: what the file should be (e.g. ``"a tournament YAML file"``), added to the message.

    Raises:
        InputError: the file is missing, unreadable, or not UTF-8 text.
    """
    source = str(path)
    hint = f"; expected {expected}" if expected else ""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"file not found; check the path{hint}", source=source) from exc
    except IsADirectoryError as exc:
        raise InputError(f"is a folder, not a file{hint}", source=source) from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8{hint}", source=source
        ) from exc
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc}){hint}", source=source) from exc

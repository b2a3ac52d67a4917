"""The project's own settings, read in one place (L1): where caches and the real prompt files live.

``QLORA_EVAL_CACHE``: the cache folder (downloaded prompt sets, models converted from GGUF); default
``~/.cache/qlora-eval``. ``QLORA_EVAL_DATA``: a folder holding the real prompt sets' files (e.g.
``../shared/data``), used when no ``--data-dir`` is given. Settings that the ecosystem owns stay with it
(``OPENAI_API_KEY`` is read by the OpenAI client, ``HF_HOME`` by the Hugging Face libraries).
"""

from __future__ import annotations

import os
from pathlib import Path

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

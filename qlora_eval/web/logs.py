"""uvicorn's logging for ``serve``, with query strings cut from the access log.

A rater's link carries their token in the query string (``/rate?token=...``), and ``serve -v`` logs every
request line; the filter replaces any query string with ``?...`` so no token lands in a log file.
"""

from __future__ import annotations

import copy
import logging
from typing import Any


class DropQueryStrings(logging.Filter):
    """Cut the query string from uvicorn access-log records (their third argument is the path with it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?...", *args[3:])
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging config, with ``DropQueryStrings`` on the access logger."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["drop_query_strings"] = {"()": f"{__name__}.DropQueryStrings"}
    config["loggers"]["uvicorn.access"]["filters"] = ["drop_query_strings"]
    return config

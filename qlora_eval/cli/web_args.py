"""Options shared by ``raters`` and ``serve``: the store they administer, and the host and port of the form.

A mistyped ``--db`` must not silently make a new, empty store (raters would get links to a round that does
not exist), so these commands open only an existing file unless ``--create`` says otherwise.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from pathlib import Path

from qlora_eval.errors import StoreError

# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens, 1-63 characters each.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def port_number(text: str) -> int:
    """An argparse type: a TCP port 1-65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range: use 1-65535 (for example 8000)")
    return port


def host_name(text: str) -> str:
    """An argparse type: an IPv4/IPv6 address (brackets allowed) or a DNS host name."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    name = bare[:-1] if bare.endswith(".") else bare
    if 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.split(".")):
        return bare
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a host: use an IP address (127.0.0.1, 0.0.0.0, ::1) or a host name (rating.example.org)"
    )


def add_db_argument(parser: argparse.ArgumentParser, default: str, *, create: bool) -> None:
    """``--db`` (and, where making a new store makes sense, ``--create``)."""
    parser.add_argument("--db", default=default, help=f"the store file; it must exist (default {default})")
    if create:
        parser.add_argument("--create", action="store_true", help="make a new, empty store when --db does not exist")


def existing_db(args: argparse.Namespace) -> str:
    """``args.db`` when the file exists (or ``--create`` was given).

    Raises:
        StoreError: no file at ``--db``; the message names ``--create`` only where the command has it.
    """
    db = str(args.db)
    if Path(db).exists() or getattr(args, "create", False):
        return db
    remedy = (
        "check the path, or pass --create to start a new, empty store"
        if hasattr(args, "create")
        else ("check the path (this command never creates a store)")
    )
    raise StoreError(f"there is no store at --db {db}: {remedy}")

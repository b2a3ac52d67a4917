"""``qlora-eval raters``: add, list, revoke and restore human raters; new tokens for a rater or the admin.

``raters add NAME`` prints the rater's link and, on the last line, their token. Tokens are stored as
sha256 hashes only, so a lost token cannot be shown again: ``raters token NAME`` (a rater) and
``raters rotate-admin`` (the admin) replace it, and the old one stops working at once. ``raters restore
NAME`` reinstates a revoked rater with a new token. Every action needs an existing ``--db`` file, except
``add`` and ``rotate-admin`` with ``--create``.
"""

from __future__ import annotations

import argparse

from qlora_eval.cli.web_args import add_db_argument, existing_db, host_name, port_number
from qlora_eval.store import DEFAULT_DB, Store
from qlora_eval.web.links import token_link


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser, *, link: bool, create: bool = False) -> None:
        add_db_argument(p, DEFAULT_DB, create=create)
        if link:
            p.add_argument(
                "--host", type=host_name, default="127.0.0.1", help="host in the printed link (default 127.0.0.1)"
            )
            p.add_argument("--port", type=port_number, default=8000, help="port in the printed link (default 8000)")
            p.add_argument(
                "--https", action="store_true", help="print an https:// link (serve behind a TLS proxy; see README)"
            )

    add = sub.add_parser("add", help="create a rater; prints their link and (last line) their token")
    add.add_argument("name", help="the rater's name (letters, digits, _ . -); votes are stored as human:NAME")
    common(add, link=True, create=True)
    lst = sub.add_parser("list", help="list raters with their state and vote counts")
    common(lst, link=False)
    revoke = sub.add_parser("revoke", help="revoke a rater's token (their votes stay)")
    revoke.add_argument("name")
    common(revoke, link=False)
    restore = sub.add_parser("restore", help="reinstate a revoked rater with a new token (prints their new link)")
    restore.add_argument("name")
    common(restore, link=True)
    token = sub.add_parser("token", help="give an active rater a new token (the old one stops working)")
    token.add_argument("name")
    common(token, link=True)
    admin = sub.add_parser("rotate-admin", help="make a new admin token (the old one stops working)")
    common(admin, link=True, create=True)


def run(args: argparse.Namespace) -> int:
    from qlora_eval.human.raters import (
        add_rater,
        list_raters,
        new_rater_token,
        restore_rater,
        revoke_rater,
        rotate_admin,
    )

    with Store(existing_db(args)) as store:
        if args.action == "add":
            token = add_rater(store, args.name)
            print(f"rater {args.name} added; send them this link (it works until `raters revoke {args.name}`):")
            print(token_link(args.host, args.port, "/rate", token, https=args.https))
            print(token)
        elif args.action == "token":
            token = new_rater_token(store, args.name)
            print(f"new token for {args.name} (the old one no longer works); their link:")
            print(token_link(args.host, args.port, "/rate", token, https=args.https))
            print(token)
        elif args.action == "restore":
            token = restore_rater(store, args.name)
            print(f"rater {args.name} restored with a new token (the revoked one stays dead); their link:")
            print(token_link(args.host, args.port, "/rate", token, https=args.https))
            print(token)
        elif args.action == "rotate-admin":
            token = rotate_admin(store)
            print("new admin token (the old one no longer works); the admin page:")
            print(token_link(args.host, args.port, "/admin", token, https=args.https))
            print(token)
        elif args.action == "revoke":
            revoke_rater(store, args.name)
            print(f"rater {args.name} revoked: their token now gets 401; their votes stay in the store")
        elif args.action == "list":
            votes = store.vote_counts()
            raters = list_raters(store)
            if not raters:
                print("no raters yet; add one with `qlora-eval raters add NAME`")
            for r in raters:
                first, repeats = votes.get(r.name, (0, 0))
                state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
                print(f"{r.name:<24} {state:<34} votes {first:>5}  repeats {repeats:>3}  since {r.created_at}")
    return 0

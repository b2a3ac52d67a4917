"""``qlora-eval raters``: add, list and revoke human raters; new tokens for a rater or the admin.

``raters add NAME`` prints the rater's link and, on the last line, their token. Tokens are stored as
sha256 hashes only, so a lost token cannot be shown again: ``raters token NAME`` (a rater) and
``raters rotate-admin`` (the admin) replace it, and the old one stops working at once.
"""

from __future__ import annotations

import argparse

from qlora_eval.store import DEFAULT_DB, Store
from qlora_eval.web.links import token_link


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser, *, link: bool) -> None:
        p.add_argument("--db", default=DEFAULT_DB, help=f"the store file (default {DEFAULT_DB})")
        if link:
            p.add_argument("--host", default="127.0.0.1", help="host in the printed link (default 127.0.0.1)")
            p.add_argument("--port", type=int, default=8000, help="port in the printed link (default 8000)")

    add = sub.add_parser("add", help="create a rater; prints their link and (last line) their token")
    add.add_argument("name", help="the rater's name (letters, digits, _ . -); votes are stored as human:NAME")
    common(add, link=True)
    lst = sub.add_parser("list", help="list raters with their state and vote counts")
    common(lst, link=False)
    revoke = sub.add_parser("revoke", help="revoke a rater's token (their votes stay)")
    revoke.add_argument("name")
    common(revoke, link=False)
    token = sub.add_parser("token", help="give an active rater a new token (the old one stops working)")
    token.add_argument("name")
    common(token, link=True)
    admin = sub.add_parser("rotate-admin", help="make a new admin token (the old one stops working)")
    common(admin, link=True)


def run(args: argparse.Namespace) -> int:
    from qlora_eval.human.raters import add_rater, list_raters, new_rater_token, revoke_rater, rotate_admin

    with Store(args.db) as store:
        if args.action == "add":
            token = add_rater(store, args.name)
            print(f"rater {args.name} added; send them this link (it works until `raters revoke {args.name}`):")
            print(token_link(args.host, args.port, "/rate", token))
            print(token)
        elif args.action == "token":
            token = new_rater_token(store, args.name)
            print(f"new token for {args.name} (the old one no longer works); their link:")
            print(token_link(args.host, args.port, "/rate", token))
            print(token)
        elif args.action == "rotate-admin":
            token = rotate_admin(store)
            print("new admin token (the old one no longer works); the admin page:")
            print(token_link(args.host, args.port, "/admin", token))
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

"""``qlora-eval serve``: the human-rating web form for one round (a prompt set and its models' answers).

The first ``serve`` on a store creates the admin token and prints the admin link once; the store keeps
only its hash, so later runs say how to get a new one (``qlora-eval raters rotate-admin``). The store must
exist (it holds the answers to rate). The access log never shows query strings, where links carry tokens.
Behind a TLS proxy, ``--forwarded-allow-ips`` lets uvicorn trust the proxy's X-Forwarded-Proto, so the
sign-in cookie is marked ``Secure``.
"""

from __future__ import annotations

import argparse

from qlora_eval.cli.web_args import add_db_argument, existing_db, host_name, port_number
from qlora_eval.errors import ConfigError
from qlora_eval.store import DEFAULT_DB


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_db_argument(parser, DEFAULT_DB, create=False)
    parser.add_argument("--host", type=host_name, default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8000, help="port to listen on, 1-65535 (default 8000)")
    parser.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        metavar="IPS",
        help="comma-separated addresses of reverse proxies whose X-Forwarded-Proto/-For headers are trusted, "
        "'*' for any (default 127.0.0.1); with HTTPS at the proxy the sign-in cookie becomes Secure",
    )
    parser.add_argument("--models", nargs="+", metavar="MODEL", help="models to compare (default: all with answers)")
    parser.add_argument("--prompts", metavar="NAME", help="prompt set to rate (default: the only one with answers)")
    parser.add_argument("--raters-per-task", type=int, default=3, help="raters per task (default 3, as in QLoRA)")
    parser.add_argument(
        "--repeats-per-rater", type=int, default=3, help="tasks each rater sees twice, sides swapped (default 3)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds answer sides and task order (default 0)")
    parser.add_argument(
        "--reference-judge",
        default="openai:gpt-4",
        help="judge the admin page compares raters with (default openai:gpt-4)",
    )


def check_can_listen(host: str, port: int) -> None:
    """Bind ``host:port`` once, so a name that does not resolve or a port in use is a clear error, not a
    traceback from inside uvicorn.

    Raises:
        ConfigError: the host does not resolve, or the address cannot be bound (in use, not this machine's).
    """
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(
            f"--host {host} does not resolve ({exc}); use an IP address or a name this machine knows"
        ) from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port "
                "(or a --host address of this machine)"
            ) from None


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from qlora_eval.human.raters import active_rater_count, ensure_admin
    from qlora_eval.store import Store
    from qlora_eval.web.app import create_app
    from qlora_eval.web.links import token_link
    from qlora_eval.web.logs import uvicorn_log_config

    db = existing_db(args)
    app = create_app(
        db,
        models=args.models,
        prompt_set=args.prompts,
        raters_per_task=args.raters_per_task,
        repeats_per_rater=args.repeats_per_rater,
        seed=args.seed,
        reference_judge=args.reference_judge,
    )
    check_can_listen(args.host, args.port)
    rnd = app.state.round
    with Store(db) as store:
        admin_token = ensure_admin(store)
        n_raters = active_rater_count(store)
    print(
        f"rating round: prompt set {rnd.prompt_set}, models {', '.join(rnd.models)}: {len(rnd.tasks)} tasks, "
        f"{args.raters_per_task} raters each; {n_raters} active rater(s)"
    )
    if n_raters == 0:
        print(f"no raters yet: add them with `qlora-eval raters add NAME --db {db}` (works while serving)")
    if admin_token is not None:
        print("admin page (shown only now; the store keeps a hash):")
        print(token_link(args.host, args.port, "/admin", admin_token))
        print(f"admin token: {admin_token}")
    else:
        print(
            f"admin page: http://{args.host}:{args.port}/admin?token=ADMIN_TOKEN. The admin token was shown by the "
            f"first serve and cannot be shown again; to replace it run `qlora-eval raters rotate-admin --db {db}`"
        )
    print(f"serving on http://{args.host}:{args.port} (Ctrl-C to stop; every vote is saved as it is made)", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning" if args.verbose == 0 else "info",
        log_config=uvicorn_log_config(),
        proxy_headers=True,
        forwarded_allow_ips=args.forwarded_allow_ips,
    )
    return 0

"""``qlora-eval serve``: the human-rating web form for one round (a prompt set and its models' answers).

The first ``serve`` on a store creates the admin token and prints the admin link once; the store keeps
only its hash, so later runs say how to get a new one (``qlora-eval raters rotate-admin``).
"""

from __future__ import annotations

import argparse

from qlora_eval.store import DEFAULT_DB


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=DEFAULT_DB, help=f"the store file (default {DEFAULT_DB})")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
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


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from qlora_eval.human.raters import active_rater_count, ensure_admin
    from qlora_eval.store import Store
    from qlora_eval.web.app import create_app
    from qlora_eval.web.links import token_link

    app = create_app(
        args.db,
        models=args.models,
        prompt_set=args.prompts,
        raters_per_task=args.raters_per_task,
        repeats_per_rater=args.repeats_per_rater,
        seed=args.seed,
        reference_judge=args.reference_judge,
    )
    rnd = app.state.round
    with Store(args.db) as store:
        admin_token = ensure_admin(store)
        n_raters = active_rater_count(store)
    print(
        f"rating round: prompt set {rnd.prompt_set}, models {', '.join(rnd.models)}: {len(rnd.tasks)} tasks, "
        f"{args.raters_per_task} raters each; {n_raters} active rater(s)"
    )
    if n_raters == 0:
        print(f"no raters yet: add them with `qlora-eval raters add NAME --db {args.db}` (works while serving)")
    if admin_token is not None:
        print("admin page (shown only now; the store keeps a hash):")
        print(token_link(args.host, args.port, "/admin", admin_token))
        print(f"admin token: {admin_token}")
    else:
        print(
            f"admin page: http://{args.host}:{args.port}/admin?token=ADMIN_TOKEN. The admin token was shown by the "
            f"first serve and cannot be shown again; to replace it run `qlora-eval raters rotate-admin --db {args.db}`"
        )
    print(f"serving on http://{args.host}:{args.port} (Ctrl-C to stop; every vote is saved as it is made)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.verbose == 0 else "info")
    return 0

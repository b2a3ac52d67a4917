"""Test data for the web form: prompts and answers written straight into a store (no model needed)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from qlora_eval.human.raters import add_rater, ensure_admin
from qlora_eval.store import Store
from qlora_eval.types import Answer, Message, Prompt, Role

PROMPT_SET = "demo"


def make_prompts(n: int, prompt_set: str = PROMPT_SET) -> list[Prompt]:
    """``n`` prompts; the first one is an OA-style conversation with earlier turns."""
    prompts = [
        Prompt(
            prompt_set,
            "p0",
            (
                Message(Role.USER, "EARLIER-USER-TURN: what is a llama?"),
                Message(Role.ASSISTANT, "EARLIER-ASSISTANT-TURN: a South American camelid."),
                Message(Role.USER, "And how big do they get?"),
            ),
        )
    ]
    prompts += [Prompt(prompt_set, f"p{i}", (Message(Role.USER, f"Question number {i}?"),)) for i in range(1, n)]
    return prompts[:n]


MODEL_CODES = ("alpha", "beta", "gamma", "delta")


def seed_store(
    path: Path,
    *,
    models: tuple[str, ...] = ("alpha", "beta", "gamma"),
    n_prompts: int = 3,
    texts: dict[tuple[str, str], str] | None = None,
) -> list[Prompt]:
    """Write prompts and one answer per (model, prompt) into the store at ``path``."""
    prompts = make_prompts(n_prompts)
    with Store(path) as store:
        store.add_prompts(prompts, set_version="1", set_hash="test")
        store.add_answers(
            Answer(
                model=m,
                model_spec=f"hf:{m}",
                prompt_set=p.prompt_set,
                prompt_id=p.prompt_id,
                prompt_hash=p.content_hash,
                text=(texts or {}).get((m, p.prompt_id), f"ANS[{MODEL_CODES.index(m)}]-{p.prompt_id}"),
                settings={},
            )
            for m in models
            for p in prompts
        )
    return prompts


def new_rater(path: Path, name: str) -> str:
    with Store(path) as store:
        return add_rater(store, name)


def new_admin(path: Path) -> str:
    with Store(path) as store:
        token = ensure_admin(store)
    assert token is not None
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """A real uvicorn server for ``app`` on 127.0.0.1 in a background thread (a context manager)."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))

    def __enter__(self) -> ServerThread:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def query(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
    """Rows of a read query on the store file, through sqlite3 itself (to check what the app stored)."""
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return list(conn.execute(sql, params).fetchall())


def write(path: Path, sql: str) -> None:
    """Change the store file behind the app's back (to simulate time passing), committed at once."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(sql)

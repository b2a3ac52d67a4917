"""The human-rating web app (FastAPI): the rating page, its JSON API and the admin page.

Auth: every rater has a personal token; scripts send ``Authorization: Bearer TOKEN``; the page uses an
HttpOnly, SameSite=Strict cookie set when the rater opens their link ``/rate?token=...``, which answers with a
page that moves on to ``/rate`` without the token. The admin page takes the admin token the same way
(``/admin?token=...``, cookie scoped to ``/admin``). The cookie is ``Secure`` when the request came over
HTTPS (behind a proxy: ``serve --forwarded-allow-ips`` lets uvicorn trust its X-Forwarded-Proto).

Hostile clients: the token is checked before a body is read, bodies are capped at 64 KB (``guard.py``),
and error answers never echo what was sent (a 422 names the field and the rule, not the value).

Model output is untrusted: the API sends it as JSON strings and the page builds the DOM with
``textContent`` only; a strict Content-Security-Policy (no inline script, nothing from other origins) is
the second line of defence.
"""

# No `from __future__ import annotations`: FastAPI must see the local dependencies in the annotations.

import io
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader

from qlora_eval.human import (
    HUMAN_JUDGE_PREFIX,
    HUMAN_TEMPLATE,
    Choice,
    Rater,
    RatingRound,
    RoundConfig,
    VoteRejected,
    list_raters,
    rater_for_token,
    round_stats,
)
from qlora_eval.interchange import arena, jsonl
from qlora_eval.store import Store
from qlora_eval.types import Judgment, Verdict
from qlora_eval.web.auth import ADMIN_COOKIE, RATER_COOKIE, AuthError, authenticate
from qlora_eval.web.guard import BodyGuard
from qlora_eval.web.schemas import ProgressOut, SkipIn, TaskOut, TurnOut, VoteIn, safe_validation_errors

_STATIC = Path(__file__).parent / "static"
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def create_app(
    db_path: str | Path,
    models: list[str] | None = None,
    prompt_set: str | None = None,
    raters_per_task: int = 3,
    repeats_per_rater: int = 3,
    *,
    seed: int = 0,
    reference_judge: str = "openai:gpt-4",
    lease_s: float = 1800.0,
) -> FastAPI:
    """Build the rating app for one round: ``models``' answers to ``prompt_set``, stored in ``db_path``.

    Args:
        db_path: the store file (it must hold the answers and their prompts).
        models: models to compare (default: every model with answers in the prompt set).
        prompt_set: the prompt set (default: the only one with answers).
        raters_per_task: how many raters each task goes to.
        repeats_per_rater: tasks each rater sees twice (sides swapped) to measure self-consistency.
        seed: seeds left/right sides and the order tasks are handed out in.
        reference_judge: the judge whose verdicts the admin page compares raters with.
        lease_s: how long an unanswered task stays reserved for the rater it was given to.

    Raises:
        ConfigError: no answers to rate, or a named model without answers.
        StoreError: the store cannot be opened.
    """
    store = Store(db_path)
    try:
        rnd = RatingRound(
            store,
            prompt_set=prompt_set or store.default_prompt_set(models),
            models=models,
            config=RoundConfig(
                raters_per_task=raters_per_task, repeats_per_rater=repeats_per_rater, seed=seed, lease_s=lease_s
            ),
        )
    except BaseException:
        store.close()
        raise
    templates = Environment(loader=PackageLoader("qlora_eval.web", "templates"), autoescape=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(title="qlora-eval human rating", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.round = rnd
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(templates.get_template(name).render(**context), status_code=status)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(AuthError)
    async def on_auth_error(_: Request, exc: AuthError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if exc.html:
            response = page("error.html", exc.status, title="Not signed in", message=exc.message)
            response.headers.update(headers)
            return response
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(_: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"detail": safe_validation_errors(exc.errors())}, status_code=422)

    @app.exception_handler(VoteRejected)
    async def on_vote_rejected(_: Request, exc: VoteRejected) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    def api_rater(request: Request) -> Rater:
        return authenticate(store, request, RATER_COOKIE, admin=False, html=False)

    def page_rater(request: Request) -> Rater:
        return authenticate(store, request, RATER_COOKIE, admin=False, html=True)

    def page_admin(request: Request) -> Rater:
        return authenticate(store, request, ADMIN_COOKIE, admin=True, html=True)

    # Outermost: every request that can carry a body shows a rater token before a byte of it is read.
    app.add_middleware(BodyGuard, check_token=api_rater)

    def enter(request: Request, token: str, cookie: str, path: str, *, admin: bool) -> Response:
        who = rater_for_token(store, token)
        if who is None or who.is_admin != admin:
            return page("error.html", 401, title="Link not valid", message="This link is unknown or was revoked.")
        # An HTML refresh instead of a 30x: a link opened from another site (mail, chat) would not carry a
        # SameSite=Strict cookie through a redirect, but does on this same-site navigation.
        response = page("enter.html", target=path)
        response.set_cookie(
            cookie,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=path if admin else "/",
            max_age=60 * 60 * 24 * 90,
        )
        return response

    # -- pages ---------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/rate", status_code=303)

    @app.get("/rate", response_class=HTMLResponse)
    def rate_page(request: Request, token: Annotated[str | None, Query(max_length=200)] = None) -> Response:
        if token is not None:
            return enter(request, token, RATER_COOKIE, "/rate", admin=False)
        who = page_rater(request)
        return page("rate.html", rater=who.name)

    @app.get("/done", response_class=HTMLResponse)
    def done_page(who: Annotated[Rater, Depends(page_rater)]) -> Response:
        progress = rnd.progress(who)
        if progress.done < progress.total:
            return RedirectResponse("/rate", status_code=303)
        return page("done.html", rater=who.name, done=progress.done)

    @app.get("/admin", response_class=HTMLResponse)
    def admin_page(request: Request, token: Annotated[str | None, Query(max_length=200)] = None) -> Response:
        if token is not None:
            return enter(request, token, ADMIN_COOKIE, "/admin", admin=True)
        page_admin(request)
        stats = round_stats(rnd, list_raters(store), reference_judge)
        recent = []
        for v in [v for v in rnd.votes() if v.rationale][-20:]:
            task = rnd.tasks[v.task_id]
            outcome = {
                Verdict.A: f"{task.model_x} better",
                Verdict.B: f"{task.model_y} better",
                Verdict.TIE: "tie",
                Verdict.BOTH_BAD: "both bad",
            }[v.verdict_xy]
            pair = f"{task.model_x} vs {task.model_y}, {task.prompt_id}"
            recent.append(
                {"rater": v.rater, "pair": pair, "outcome": outcome, "repeat": v.is_repeat, "text": v.rationale}
            )
        return page("admin.html", stats=stats, recent=recent)

    def human_judgments() -> list[Judgment]:
        return [
            s.judgment
            for s in store.judgments(models=rnd.models, prompt_set=rnd.prompt_set)
            if s.judgment.judge.startswith(HUMAN_JUDGE_PREFIX) and s.judgment.template_hash == HUMAN_TEMPLATE
        ]

    def download(body: str, name: str, media: str) -> Response:
        return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/admin/download/judgments.jsonl")
    def download_jsonl(_: Annotated[Rater, Depends(page_admin)]) -> Response:
        out = io.StringIO()
        jsonl.write_records(human_judgments(), out)
        return download(out.getvalue(), f"human-{rnd.prompt_set}.jsonl", "application/x-ndjson")

    @app.get("/admin/download/arena.json")
    def download_arena(_: Annotated[Rater, Depends(page_admin)]) -> Response:
        out = io.StringIO()
        arena.write_judgments(human_judgments(), out)
        return download(out.getvalue(), f"human-{rnd.prompt_set}-arena.json", "application/json")

    # -- JSON API ------------------------------------------------------------------------------

    @app.get("/api/next")
    def api_next(who: Annotated[Rater, Depends(api_rater)]) -> Response:
        shown = rnd.next_for(who)
        if shown is None:
            return Response(status_code=204)
        body = TaskOut(
            assignment_id=shown.assignment_id,
            prompt=shown.prompt.question,
            context=[TurnOut(role=t.role.value, content=t.content) for t in shown.prompt.turns[:-1]],
            left=shown.left_text,
            right=shown.right_text,
            progress=ProgressOut(done=shown.progress.done, total=shown.progress.total),
        )
        return JSONResponse(body.model_dump())

    @app.post("/api/votes", status_code=201)
    def api_vote(body: VoteIn, who: Annotated[Rater, Depends(api_rater)]) -> JSONResponse:
        progress = rnd.vote(who, body.assignment_id, Choice(body.choice), body.rationale.strip())
        return JSONResponse({"stored": True, "progress": progress.to_dict()}, status_code=201)

    @app.post("/api/skip")
    def api_skip(body: SkipIn, who: Annotated[Rater, Depends(api_rater)]) -> JSONResponse:
        progress = rnd.skip(who, body.assignment_id)
        return JSONResponse({"skipped": True, "progress": progress.to_dict()})

    @app.get("/api/progress")
    def api_progress(who: Annotated[Rater, Depends(api_rater)]) -> JSONResponse:
        return JSONResponse(rnd.progress(who).to_dict())

    return app

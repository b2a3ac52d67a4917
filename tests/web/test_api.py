"""The rating API through FastAPI's TestClient: auth, assignment rules, vote validation and storage."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from qlora_eval.errors import ConfigError
from qlora_eval.human import HUMAN_TEMPLATE, revoke_rater
from qlora_eval.store import Store
from qlora_eval.types import Order, Verdict
from qlora_eval.web.app import create_app
from tests.web.helpers import MODEL_CODES, PROMPT_SET, bearer, new_admin, new_rater, query, seed_store, write


def client_for(db: Path, **kwargs: Any) -> TestClient:
    return TestClient(create_app(db, **kwargs))


def model_of(text: str) -> str:
    """Which model wrote a seeded answer (``ANS[i]-pid``)."""
    return MODEL_CODES[int(text[4])]


def vote_counts(db: Path) -> tuple[int, int, int]:
    with Store(db) as s:
        return (
            s.counts()["judgments"],
            int(query(db, "SELECT COUNT(*) FROM web_votes")[0][0]),
            int(query(db, "SELECT COUNT(*) FROM web_assignments WHERE skipped_at IS NOT NULL")[0][0]),
        )


def rate_all(client: TestClient, token: str, choice: str = "left") -> list[dict[str, Any]]:
    """Vote ``choice`` on every task until 204; returns the tasks seen."""
    seen = []
    for _ in range(200):
        r = client.get("/api/next", headers=bearer(token))
        if r.status_code == 204:
            return seen
        assert r.status_code == 200, r.text
        task = r.json()
        seen.append(task)
        v = client.post(
            "/api/votes", headers=bearer(token), json={"assignment_id": task["assignment_id"], "choice": choice}
        )
        assert v.status_code == 201, v.text
    raise AssertionError("the rater never finished")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "rate.db"
    seed_store(path)
    return path


def test_every_endpoint_needs_a_valid_token(db: Path) -> None:
    token = new_rater(db, "alice")
    admin = new_admin(db)
    client = client_for(db)
    body = {"assignment_id": "x", "choice": "left"}
    assert client.get("/api/next").status_code == 401
    assert client.post("/api/votes", json=body).status_code == 401
    assert client.get("/api/next", headers=bearer("forged-" + token)).status_code == 401
    assert client.get("/api/next", headers={"Authorization": token}).status_code == 401  # no "Bearer"
    assert client.get("/api/next", headers=bearer(admin)).status_code == 403  # the admin cannot rate
    assert client.get("/rate").status_code == 401
    assert client.get("/admin").status_code == 401
    assert client.get("/admin", headers=bearer(token)).status_code == 403
    assert client.get("/admin/download/judgments.jsonl", headers=bearer(token)).status_code == 403
    assert client.get("/admin/download/judgments.jsonl").status_code == 401
    assert client.get("/rate?token=forged").status_code == 401
    assert client.get("/api/next", headers=bearer(token)).status_code == 200

    with Store(db) as s:
        revoke_rater(s, "alice")
        stored = [r[0] for r in query(db, "SELECT token_hash FROM raters")]
    assert token not in stored and admin not in stored  # only hashes are kept
    r = client.get("/api/next", headers=bearer(token))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_token_link_sets_a_strict_httponly_cookie_the_page_and_api_accept(db: Path) -> None:
    token = new_rater(db, "alice")
    client = client_for(db)
    r = client.get(f"/rate?token={token}")
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert 'http-equiv="refresh"' in r.text and "url=/rate" in r.text
    page = client.get("/rate")
    assert page.status_code == 200 and "alice" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/api/next").status_code == 200  # the cookie alone authenticates


def test_next_is_blind_and_shows_earlier_turns(db: Path) -> None:
    token = new_rater(db, "alice")
    client = client_for(db)
    seen = rate_all(client, token)
    assert len(seen) == 9 + 3  # 3 prompts x 3 pairs, plus 3 repeats
    for task in seen:
        assert set(task) >= {"assignment_id", "prompt", "left", "right", "context", "progress"}
        blob = json.dumps(task)
        assert not any(m in blob for m in ("alpha", "beta", "gamma")), blob
        assert task["left"] != task["right"]
    oa = [t for t in seen if t["prompt"] == "And how big do they get?"]
    assert oa and [t["role"] for t in oa[0]["context"]] == ["user", "assistant"]
    assert oa[0]["context"][0]["content"].startswith("EARLIER-USER-TURN")
    progress = [t["progress"] for t in seen]
    assert [p["done"] for p in progress] == list(range(len(seen)))
    assert progress[-1]["total"] == len(seen)


def test_invalid_votes_are_rejected_and_store_nothing(db: Path) -> None:
    alice, bob = new_rater(db, "alice"), new_rater(db, "bob")
    client = client_for(db)
    task = client.get("/api/next", headers=bearer(alice)).json()
    bobs = client.get("/api/next", headers=bearer(bob)).json()
    raw_task_id = query(db, "SELECT task_id FROM web_tasks LIMIT 1")[0][0]
    before = vote_counts(db)
    cases = [
        ({"assignment_id": "no-such-task", "choice": "left"}, 400),
        ({"assignment_id": bobs["assignment_id"], "choice": "left"}, 400),  # assigned to bob, not alice
        ({"assignment_id": raw_task_id, "choice": "left"}, 400),  # a task id, but not an assignment of alice
        ({"assignment_id": task["assignment_id"], "choice": "middle"}, 422),
        ({"assignment_id": task["assignment_id"], "choice": "LEFT"}, 422),
        ({"assignment_id": task["assignment_id"]}, 422),
        ({"assignment_id": task["assignment_id"], "choice": "left", "rationale": "x" * 2001}, 422),
        ({"assignment_id": task["assignment_id"], "choice": "left", "extra": 1}, 422),
        ({"assignment_id": "", "choice": "left"}, 422),
    ]
    for body, status in cases:
        r = client.post("/api/votes", headers=bearer(alice), json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["detail"], body
        assert vote_counts(db) == before, body
    assert client.post("/api/votes", headers=bearer(alice), content=b"not json").status_code == 422
    ok = client.post(
        "/api/votes", headers=bearer(alice), json={"assignment_id": task["assignment_id"], "choice": "tie"}
    )
    assert ok.status_code == 201
    after_one = vote_counts(db)
    assert after_one[:2] == (before[0] + 1, before[1] + 1)
    again = client.post(
        "/api/votes", headers=bearer(alice), json={"assignment_id": task["assignment_id"], "choice": "left"}
    )
    assert again.status_code == 409 and "already voted" in again.json()["detail"]
    skipped = client.get("/api/next", headers=bearer(alice)).json()
    assert (
        client.post("/api/skip", headers=bearer(alice), json={"assignment_id": skipped["assignment_id"]}).status_code
        == 200
    )
    late = client.post(
        "/api/votes", headers=bearer(alice), json={"assignment_id": skipped["assignment_id"], "choice": "left"}
    )
    assert late.status_code == 409
    assert vote_counts(db)[:2] == after_one[:2]


def test_votes_are_judgments_of_the_real_models(db: Path) -> None:
    token = new_rater(db, "alice")
    client = client_for(db, repeats_per_rater=0)
    choices = ["left", "right", "tie", "both_bad"]
    shown: dict[str, tuple[str, str, str]] = {}
    for i in range(9):
        task = client.get("/api/next", headers=bearer(token)).json()
        choice = choices[i % 4]
        body = {"assignment_id": task["assignment_id"], "choice": choice, "rationale": f"because {i}"}
        assert client.post("/api/votes", headers=bearer(token), json=body).status_code == 201
        shown[f"because {i}"] = (model_of(task["left"]), model_of(task["right"]), choice)
    assert client.get("/api/next", headers=bearer(token)).status_code == 204
    with Store(db) as s:
        stored = s.judgments(judges=["human:alice"])
        answers = {a.answer_key: a for a in s.answers()}
    assert len(stored) == 9
    lefts = Counter()
    for sj in stored:
        j = sj.judgment
        left, right, choice = shown[j.rationale]
        assert (j.model_a, j.model_b) == (left, right)
        assert (
            j.verdict
            == {"left": Verdict.A, "right": Verdict.B, "tie": Verdict.TIE, "both_bad": Verdict.BOTH_BAD}[choice]
        )
        assert j.order is Order.of(left, right)
        assert j.template_hash == HUMAN_TEMPLATE and j.prompt_set == PROMPT_SET
        assert answers[j.answer_a_key].model == left and answers[j.answer_b_key].model == right
        lefts[j.order] += 1
    assert lefts[Order.FORWARD] > 0 and lefts[Order.SWAPPED] > 0  # sides are drawn, not fixed


def test_sides_are_seeded_per_rater_and_task(tmp_path: Path) -> None:
    def sides(seed: int, folder: str) -> list[tuple[str, str]]:
        path = tmp_path / folder / "s.db"
        path.parent.mkdir()
        seed_store(path)
        token = new_rater(path, "alice")
        return [(t["prompt"], t["left"]) for t in rate_all(client_for(path, seed=seed, repeats_per_rater=0), token)]

    assert sides(7, "a") == sides(7, "b")
    assert sides(7, "a2") != sides(8, "c")


def test_each_task_goes_to_at_most_raters_per_task_raters(tmp_path: Path) -> None:
    db = tmp_path / "cap.db"
    seed_store(db, models=("alpha", "beta"), n_prompts=1)  # a single task
    tokens = [new_rater(db, n) for n in ("a", "b", "c")]
    client = client_for(db, raters_per_task=2, repeats_per_rater=0)
    first = client.get("/api/next", headers=bearer(tokens[0])).json()
    second = client.get("/api/next", headers=bearer(tokens[1])).json()
    assert first["prompt"] == second["prompt"]
    assert client.get("/api/next", headers=bearer(tokens[2])).status_code == 204  # both slots taken
    # The same rater asking again gets the same pending task (a reload shows the same page).
    assert client.get("/api/next", headers=bearer(tokens[0])).json() == first
    # A skip frees the slot for another rater; the skipper never sees the task again.
    assert (
        client.post("/api/skip", headers=bearer(tokens[1]), json={"assignment_id": second["assignment_id"]}).status_code
        == 200
    )
    third = client.get("/api/next", headers=bearer(tokens[2]))
    assert third.status_code == 200 and third.json()["prompt"] == first["prompt"]
    assert client.get("/api/next", headers=bearer(tokens[1])).status_code == 204
    for token, task in ((tokens[0], first), (tokens[2], third.json())):
        body = {"assignment_id": task["assignment_id"], "choice": "left"}
        assert client.post("/api/votes", headers=bearer(token), json=body).status_code == 201
    with Store(db) as s:
        assert s.counts()["judgments"] == 2


def test_expired_lease_frees_the_slot(tmp_path: Path) -> None:
    db = tmp_path / "lease.db"
    seed_store(db, models=("alpha", "beta"), n_prompts=1)
    a, b = new_rater(db, "a"), new_rater(db, "b")
    client = client_for(db, raters_per_task=1, repeats_per_rater=0, lease_s=60)
    assert client.get("/api/next", headers=bearer(a)).status_code == 200
    assert client.get("/api/next", headers=bearer(b)).status_code == 204
    write(db, "UPDATE web_assignments SET assigned_at = '2000-01-01T00:00:00+00:00'")
    assert client.get("/api/next", headers=bearer(b)).status_code == 200


def test_repeats_come_back_swapped_and_stay_out_of_the_judgments(db: Path) -> None:
    token = new_rater(db, "alice")
    client = client_for(db, repeats_per_rater=2)
    seen = rate_all(client, token, choice="left")
    assert len(seen) == 9 + 2
    by_pair: dict[frozenset[str], list[dict[str, Any]]] = {}
    for task in seen:
        by_pair.setdefault(frozenset((task["left"], task["right"])), []).append(task)
    repeated = [ts for ts in by_pair.values() if len(ts) == 2]
    assert len(repeated) == 2
    for original, repeat in repeated:
        assert (repeat["left"], repeat["right"]) == (original["right"], original["left"])
        assert repeat["assignment_id"] != original["assignment_id"]
    with Store(db) as s:
        assert s.counts()["judgments"] == 9  # first votes only: rankings never see a repeat
        rows = query(db, "SELECT is_repeat, judgment_key FROM web_votes")
    assert sorted(r[0] for r in rows).count(1) == 2
    assert all((r[1] is None) == bool(r[0]) for r in rows)
    admin = new_admin(db)
    page = client.get("/admin", headers=bearer(admin)).text
    # "left" both times with sides swapped: each repeat contradicts the first vote.
    assert '0% <span class="n">(0/2)</span>' in page


def test_restart_loses_nothing(db: Path) -> None:
    token = new_rater(db, "alice")
    app = create_app(db)
    with TestClient(app) as client:
        for _ in range(4):
            task = client.get("/api/next", headers=bearer(token)).json()
            body = {"assignment_id": task["assignment_id"], "choice": "right"}
            assert client.post("/api/votes", headers=bearer(token), json=body).status_code == 201
        pending = client.get("/api/next", headers=bearer(token)).json()
    # The lifespan closed the store; a new server on the same file picks up where this one stopped.
    with TestClient(create_app(db)) as client:
        assert client.get("/api/next", headers=bearer(token)).json() == pending
        rest = rate_all(client, token, choice="tie")
    assert len(rest) == 12 - 4
    with Store(db) as s:
        assert s.counts()["judgments"] == 9
        assert int(query(db, "SELECT COUNT(*) FROM web_votes")[0][0]) == 12


def test_round_config_errors_name_the_fix(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    Store(db).close()
    with pytest.raises(ConfigError, match="generate"):
        create_app(db)
    seed_store(db)
    with pytest.raises(ConfigError, match="zeta"):
        create_app(db, models=["alpha", "zeta"])
    with pytest.raises(ConfigError, match="at least two models"):
        create_app(db, models=["alpha"])
    with pytest.raises(ConfigError, match="raters_per_task"):
        create_app(db, raters_per_task=0)


def test_hostile_text_never_reaches_html(tmp_path: Path) -> None:
    hostile = '<script>window.pwned=1</script><img src=x onerror="alert(1)">'
    db = tmp_path / "hostile.db"
    seed_store(db, models=("alpha", "beta"), n_prompts=1, texts={("alpha", "p0"): hostile})
    token = new_rater(db, "mallory")
    client = client_for(db, repeats_per_rater=0)
    task = client.get("/api/next", headers=bearer(token)).json()
    assert hostile in (task["left"], task["right"])  # the API hands the text over verbatim, as JSON
    page = client.get("/rate", headers=bearer(token)).text
    assert "<script>window" not in page and "onerror" not in page
    script = client.get("/static/rate.js").text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    body = {"assignment_id": task["assignment_id"], "choice": "left", "rationale": hostile}
    assert client.post("/api/votes", headers=bearer(token), json=body).status_code == 201
    admin = client.get("/admin", headers=bearer(new_admin(db))).text
    assert "<script>window.pwned" not in admin and "&lt;script&gt;window.pwned=1&lt;/script&gt;" in admin


def test_admin_page_and_downloads(db: Path) -> None:
    from qlora_eval.types import Judgment

    tokens = {n: new_rater(db, n) for n in ("ann", "ben", "cat")}
    client = client_for(db, repeats_per_rater=0)
    # Everybody votes for alpha when alpha is shown, else for the left answer.
    for token in tokens.values():
        for _ in range(20):
            r = client.get("/api/next", headers=bearer(token))
            if r.status_code == 204:
                break
            t = r.json()
            choice = "left" if model_of(t["left"]) == "alpha" or model_of(t["right"]) != "alpha" else "right"
            body = {"assignment_id": t["assignment_id"], "choice": choice}
            assert client.post("/api/votes", headers=bearer(token), json=body).status_code == 201
    with Store(db) as s:
        # GPT-4 prefers beta on every alpha-vs-beta task; the raters all preferred alpha there.
        s.add_judgments(
            Judgment("openai:gpt-4", "alpha", "beta", PROMPT_SET, f"p{i}", Verdict.B, Order.FORWARD) for i in range(3)
        )
    admin = new_admin(db)
    r = client.get(f"/admin?token={admin}")
    assert r.status_code == 200 and "path=/admin" in r.headers["set-cookie"].lower()
    page = client.get("/admin").text
    assert '<strong id="total-votes">27</strong> of 27' in page
    assert "ann" in page and "alpha vs beta" in page
    # ann disagrees with gpt-4 on all three alpha-vs-beta tasks.
    row = page.split("<td>ann")[1].split("</tr>")[0]
    assert '0% <span class="n">(0/3)</span>' in row
    lines = client.get("/admin/download/judgments.jsonl").text.splitlines()
    assert len(lines) == 27
    records = [json.loads(line) for line in lines]
    assert {r["judge"] for r in records} == {"human:ann", "human:ben", "human:cat"}
    battles = client.get("/admin/download/arena.json").json()
    assert len(battles) == 27
    for b, rec in zip(battles, records, strict=True):
        winner = {"A": "model_a", "B": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}[rec["verdict"]]
        assert (b["model_a"], b["model_b"], b["winner"]) == (rec["model_a"], rec["model_b"], winner)


def test_admin_agreement_figures(db: Path) -> None:
    """Three raters who all prefer alpha, and call beta vs gamma a tie: kappa 1, full majority agreement."""
    tokens = [new_rater(db, n) for n in ("ann", "ben", "cat")]
    client = client_for(db, repeats_per_rater=1)
    for token in tokens:
        for _ in range(20):
            r = client.get("/api/next", headers=bearer(token))
            if r.status_code == 204:
                break
            t = r.json()
            left, right = model_of(t["left"]), model_of(t["right"])
            choice = "left" if left == "alpha" else "right" if right == "alpha" else "tie"
            body = {"assignment_id": t["assignment_id"], "choice": choice}
            assert client.post("/api/votes", headers=bearer(token), json=body).status_code == 201
    page = client.get("/admin", headers=bearer(new_admin(db))).text
    assert '<strong id="kappa">1.000</strong>' in page
    for name in ("ann", "ben", "cat"):
        row = page.split(f"<td>{name}")[1].split("</tr>")[0]
        # majority 9/9, no judge judgments, self-consistency 1/1.
        assert row.count('100% <span class="n">(9/9)</span>') == 1
        assert '100% <span class="n">(1/1)</span>' in row and "n/a" in row

"""The rating page in headless Chromium (Debian's /usr/bin/chromium through Playwright)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import expect, sync_playwright

from qlora_eval.store import Store
from qlora_eval.types import Verdict
from qlora_eval.web.app import create_app
from tests.web.helpers import ServerThread, new_rater, query, seed_store

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("QLORA_EVAL_SCREENSHOTS", "/tmp/qlora-eval-screenshots"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


def boxes(page: Any) -> tuple[dict[str, float], dict[str, float]]:
    left = page.locator("#answer-left").bounding_box()
    right = page.locator("#answer-right").bounding_box()
    assert left is not None and right is not None
    return left, right


def assert_side_by_side(page: Any) -> None:
    left, right = boxes(page)
    viewport = page.viewport_size
    assert abs(left["y"] - right["y"]) < 1, (left, right)  # same top
    assert left["x"] + left["width"] <= right["x"], (left, right)  # left ends before right begins
    assert left["width"] > 200 and right["width"] > 200
    assert right["x"] + right["width"] <= viewport["width"]  # both fully inside the viewport
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]  # no sideways scroll


def test_rater_votes_with_mouse_and_keyboard(browser: Any, tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    seed_store(db, models=("alpha", "beta"), n_prompts=2)  # 2 tasks, plus 1 repeat
    token = new_rater(db, "alice")
    errors: list[str] = []
    with ServerThread(create_app(db, repeats_per_rater=1)) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server.url}/rate?token={token}")
        page.wait_for_url(f"{server.url}/rate")
        page.locator("#task").wait_for(state="visible")
        progress = page.locator("#progress-text")
        assert progress.inner_text() == "0 of 3 done"
        assert page.locator("#answer-left").is_visible() and page.locator("#answer-right").is_visible()
        assert_side_by_side(page)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "rate.png"), full_page=True)

        contexts = [page.locator("#context-box").is_visible()]
        first_left = page.locator("#left").inner_text()
        # Mouse: choose "left", submit with the button.
        assert page.locator("#submit").is_disabled()
        page.get_by_text("Left is better").click()
        page.locator("#rationale").fill("clearer")
        page.locator("#submit").click()
        expect(progress).to_have_text("1 of 3 done")
        assert page.locator("#message").inner_text() == "Saved."

        # Keyboard: 2 = right, typing in the rationale does not change the choice, Enter submits.
        contexts.append(page.locator("#context-box").is_visible())
        # The OA-style prompt shows its earlier turns; the single-turn one hides the box.
        assert sorted(contexts) == [False, True]
        if contexts[-1]:
            assert "EARLIER-USER-TURN" in page.locator("#context").inner_text()
            page.screenshot(path=str(SHOTS / "context.png"), full_page=True)
        second_right = page.locator("#right").inner_text()
        page.keyboard.press("2")
        assert page.locator("input[value=right]").is_checked()
        page.locator("#rationale").click()
        page.keyboard.type("1 s 4")
        assert page.locator("input[value=right]").is_checked()
        page.keyboard.press("Enter")
        expect(progress).to_have_text("2 of 3 done")
        assert float(page.locator("#progress").get_attribute("value") or 0) == 2

        # Enter without a choice is refused with a message; S skips (the repeat, here).
        page.keyboard.press("Enter")
        assert "Choose one" in page.locator("#message").inner_text()
        page.locator("body").click(position={"x": 5, "y": 300})
        page.keyboard.press("s")
        page.wait_for_url(f"{server.url}/done")
        assert "Thank you, alice" in page.locator("h1").inner_text()
        page.close()
    assert errors == []
    with Store(db) as s:
        stored = {j.judgment.rationale: j.judgment for j in s.judgments(judges=["human:alice"])}
        skipped = query(db, "SELECT COUNT(*) FROM web_assignments WHERE skipped_at IS NOT NULL")[0][0]
    assert set(stored) == {"clearer", "1 s 4"} and skipped == 1
    assert stored["clearer"].verdict is Verdict.A and stored["1 s 4"].verdict is Verdict.B
    model_of = {"ANS[0]": "alpha", "ANS[1]": "beta"}
    assert stored["clearer"].model_a == model_of[first_left[:6]]
    assert stored["1 s 4"].model_b == model_of[second_right[:6]]


def test_hostile_answers_stay_text_and_keep_the_layout(browser: Any, tmp_path: Path) -> None:
    hostile = (
        '<script>window.pwned = 1</script><img src=x onerror="window.pwned=2"><b>not bold</b>\n'
        + "x" * 4000
        + "\n\u202eRTL override: abc \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 🙂 e\u0301\n"
        + "```python\ndef f():\n    return '<script>' + '"
        + "y" * 500
        + "'\n```\nafter the code"
    )
    db = tmp_path / "h.db"
    seed_store(db, models=("alpha", "beta"), n_prompts=2, texts={("alpha", "p1"): hostile, ("beta", "p1"): hostile})
    token = new_rater(db, "mallory")
    with ServerThread(create_app(db, repeats_per_rater=0)) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server.url}/rate?token={token}")
        page.locator("#task").wait_for(state="visible")
        progress = page.locator("#progress-text")
        if "ANS[" in page.locator("#left").inner_text():  # the plain task came first: vote it away
            page.keyboard.press("3")
            page.keyboard.press("Enter")
            expect(progress).to_have_text("1 of 2 done")
        left = page.locator("#left")
        assert "<script>window.pwned = 1</script>" in left.inner_text()
        assert page.evaluate("window.pwned") is None
        for panel in ("#left", "#right", "#prompt"):
            assert page.locator(f"{panel} img, {panel} script, {panel} b").count() == 0
        code = page.locator("#left pre code")
        assert code.count() == 1 and code.inner_text().startswith("def f():")
        assert "after the code" in page.locator("#left .text").last.inner_text()
        assert_side_by_side(page)
        left_box, _ = boxes(page)
        pre_box = page.locator("#left pre").bounding_box()
        assert pre_box is not None and pre_box["x"] + pre_box["width"] <= left_box["x"] + left_box["width"] + 1
        page.locator("#left .text").last.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "hostile.png"), full_page=True)
        page.close()


def test_after_submitting_with_a_rationale_the_keys_choose_again(browser: Any, tmp_path: Path) -> None:
    """Focus leaves the rationale box with each new task, so the next "2" chooses instead of being typed."""
    db = tmp_path / "k.db"
    seed_store(db, models=("alpha", "beta"), n_prompts=4)
    token = new_rater(db, "kim")
    with ServerThread(create_app(db, repeats_per_rater=0)) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server.url}/rate?token={token}")
        page.locator("#task").wait_for(state="visible")
        progress = page.locator("#progress-text")
        page.keyboard.press("1")
        page.locator("#rationale").click()
        page.keyboard.type("because")
        page.keyboard.press("Enter")
        expect(progress).to_have_text("1 of 4 done")
        page.keyboard.press("2")  # no click in between
        assert page.locator("#rationale").input_value() == ""
        assert page.locator("input[value=right]").is_checked()
        page.keyboard.press("Enter")
        expect(progress).to_have_text("2 of 4 done")
        # The same after a skip from the rationale box.
        page.keyboard.press("3")
        page.locator("#rationale").click()
        page.locator("#skip").click()
        expect(progress).to_have_text("3 of 4 done")
        page.keyboard.press("4")
        assert page.locator("input[value=both_bad]").is_checked()
        page.keyboard.press("Enter")
        page.wait_for_url(f"{server.url}/done")
        page.close()
    with Store(db) as s:
        rationales = sorted(j.judgment.rationale for j in s.judgments(judges=["human:kim"]))
    assert rationales == ["", "", "because"]

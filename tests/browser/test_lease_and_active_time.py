"""The screen keeps its lease alive, autosaves drafts, and records only active time. Time in
the page is Playwright's fake clock, so minutes pass in milliseconds."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from annotate.models import Assignment
from personalization.models import Guideline, Study
from tests.browser.conftest import PageProblems, login_with_keyboard
from tests.screens.builders import populate_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HIDE_TAB_JS = """(hidden) => {
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => hidden ? 'hidden' : 'visible' });
  document.dispatchEvent(new Event('visibilitychange'));
}"""


@pytest.fixture
def populated(study: Study) -> Study:
    populate_study(study)
    return study


def test_heartbeat_extends_the_lease_and_idle_or_hidden_time_is_not_counted(
    page: Page, live_server: object, populated: Study, annotator: User, problems: PageProblems
) -> None:
    login_with_keyboard(page, live_server.url, "annotator", "pw-annotator-123")
    page.clock.install()
    page.goto(f"{live_server.url}/studies/{populated.pk}/stages/2/work/")
    expect(page.locator(".attr.current")).to_be_visible()
    assignment = Assignment.objects.get(annotator=annotator, stage=2, status=Assignment.Status.LEASED)
    leased_until = assignment.lease_expires_at

    page.keyboard.press("y")
    # One heartbeat interval. (The page is watched, not the database: on SQLite the test thread
    # must not read while the live server writes.)
    with page.expect_response(lambda r: r.url.endswith("/heartbeat/")) as heartbeat:
        page.clock.run_for(31_000)
    assert heartbeat.value.status == 200

    # Two idle minutes: only the first minute after the last key press counts.
    page.clock.run_for(120_000)
    # A hidden tab counts nothing, even with activity.
    page.evaluate(HIDE_TAB_JS, True)
    page.clock.run_for(30_000)
    page.evaluate(HIDE_TAB_JS, False)
    for _ in range(5):
        page.keyboard.press("n")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#status")).to_contain_text("Submitted")

    assignment.refresh_from_db()
    assert assignment.lease_expires_at > leased_until
    # ~60 s counted out of 181 s of page time (key presses and page work add a little).
    assert 59_000 <= assignment.active_ms <= 66_000, assignment.active_ms
    assert problems == []


def test_a_reload_restores_the_autosaved_draft(
    page: Page, live_server: object, populated: Study, annotator: User, problems: PageProblems
) -> None:
    login_with_keyboard(page, live_server.url, "annotator", "pw-annotator-123")
    url = f"{live_server.url}/studies/{populated.pk}/stages/1/work/"
    page.goto(url)
    expect(page.locator(".attr.current")).to_be_visible()
    page.keyboard.press("2")
    page.keyboard.press("c")
    page.keyboard.type("half done")
    page.keyboard.press("Escape")
    page.keyboard.press("f")
    expect(page.locator("#save-state")).to_have_text("Draft saved")

    # The guidelines opened on their own for this first look at version 1 ...
    expect(page.locator("#guidelines")).to_have_attribute("open", "")
    page.reload()
    expect(page.locator(".attr.current")).to_be_visible()
    # ... and stay closed once seen.
    expect(page.locator("#guidelines")).not_to_have_attribute("open", "")
    expect(page.locator(".attr").nth(0).locator("input[value=maybe]")).to_be_checked()
    expect(page.locator("#note")).to_have_value("half done")
    expect(page.locator("#flag")).to_be_checked()
    # Focus lands on the first attribute still open.
    expect(page.locator(".attr").nth(1)).to_be_focused()

    # A new version of the guidelines opens them again, with a word about the change.
    Guideline.objects.create(study=populated, stage=1, version=2, text="Be stricter about age.")
    page.reload()
    expect(page.locator("#guidelines")).to_have_attribute("open", "")
    expect(page.locator("#guidelines-text")).to_have_text("Be stricter about age.")
    expect(page.locator("#status")).to_contain_text("now version 2")
    assert problems == []


def test_evidence_turns_highlight_on_hover_and_scroll_into_view(
    page: Page, live_server: object, populated: Study, annotator: User, problems: PageProblems
) -> None:
    login_with_keyboard(page, live_server.url, "annotator", "pw-annotator-123")
    page.goto(f"{live_server.url}/studies/{populated.pk}/stages/1/work/")
    expect(page.locator(".attr.current")).to_be_visible()
    # The second attribute's evidence is in the second conversation, below the fold of the history panel.
    link = page.locator(".attr").nth(1).locator(".evidence-link").first
    turn_id = link.get_attribute("data-turn-id")
    turn = page.locator(f"#turn-{turn_id}")
    link.hover()
    expect(turn).to_have_class(re.compile(r"\bhighlight\b"))
    link.click()
    expect(turn).to_be_in_viewport()
    assert problems == []


def test_an_abandoned_page_stops_renewing_its_lease(
    page: Page, live_server: object, populated: Study, annotator: User, problems: PageProblems
) -> None:
    login_with_keyboard(page, live_server.url, "annotator", "pw-annotator-123")
    page.clock.install()
    page.goto(f"{live_server.url}/studies/{populated.pk}/stages/2/work/")
    expect(page.locator(".attr.current")).to_be_visible()
    heartbeats: list[str] = []
    page.on("request", lambda r: heartbeats.append(r.url) if r.url.endswith("/heartbeat/") else None)

    # Nine and a half minutes of a visible page nobody touches: a heartbeat every 30 s.
    for _ in range(19):
        with page.expect_response(lambda r: r.url.endswith("/heartbeat/")):
            page.clock.run_for(30_000)
    page.clock.run_for(60_000)  # past ten idle minutes
    page.wait_for_timeout(300)
    sent = len(heartbeats)
    for _ in range(6):
        page.clock.run_for(30_000)
        page.wait_for_timeout(100)
    assert len(heartbeats) == sent, "heartbeats continued after ten idle minutes"

    page.keyboard.press("j")  # the annotator is back
    with page.expect_request(lambda r: r.url.endswith("/heartbeat/")):
        page.clock.run_for(30_000)
    assert problems == []

"""Every screen renders on a laptop and on a phone without horizontal scrolling; a full-page
screenshot of each is saved for a human to look at."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from annotate.models import Item
from annotate.services import assignment_next, assignment_submit
from personalization.models import Study
from tests.browser.conftest import PageProblems, login_with_keyboard, screenshot
from tests.screens.builders import add_annotators, populate_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def judged(study: Study, annotator: User) -> Study:
    """Stage 1 fully judged by three people (one flag), so the dashboard has numbers to show."""
    populate_study(study)
    for user, answers in zip(
        [annotator, *add_annotators(study, 2)],
        [("makes_sense", "maybe", "makes_sense"), ("makes_sense", "makes_sense", "doesnt_make_sense"), ("maybe",) * 3],
        strict=True,
    ):
        assignment = assignment_next(study=study, stage=1, annotator=user)
        ids = sorted(assignment.item.attributes.values_list("id", flat=True))
        assignment_submit(
            assignment=assignment,
            answers=dict(zip(ids, answers, strict=True)),
            flag=user == annotator,
            note="Mentions self-harm" if user == annotator else "",
            active_ms=42_000,
        )
    study.owners.first().__class__.objects.filter(username="owner").update(is_staff=True)
    return study


# The elements that stick out past the right edge, to name the culprit when a page scrolls sideways.
WIDE_ELEMENTS_JS = """() => {
  const clipped = (e) => { for (let p = e.parentElement; p; p = p.parentElement) {
    if (getComputedStyle(p).overflowX !== 'visible') return true; } return false; };
  return [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5 && !clipped(e))
    .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));
}"""


def _no_horizontal_scroll(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px: {page.evaluate(WIDE_ELEMENTS_JS)}"


def test_login_page(page: Page, phone_page: Page, live_server: object, problems: PageProblems) -> None:
    for current, name in ((page, "login-laptop"), (phone_page, "login-phone")):
        current.goto(f"{live_server.url}/accounts/login/")
        expect(current.get_by_role("heading", name="Log in to Attune")).to_be_visible()
        _no_horizontal_scroll(current)
        screenshot(current, name)
    assert problems == []


def test_owner_pages(page: Page, phone_page: Page, live_server: object, judged: Study, problems: PageProblems) -> None:
    judged_item = Item.objects.filter(study=judged, stage=1).first()
    open_item = Item.objects.filter(study=judged, stage=3).first()
    for current, suffix in ((page, "laptop"), (phone_page, "phone")):
        login_with_keyboard(current, live_server.url, "owner", "pw-owner-123")
        for path, name, heading in (
            (f"/studies/{judged.pk}/", "study", judged.name),
            (f"/studies/{judged.pk}/dashboard/", "dashboard", f"Dashboard: {judged.name}"),
            (f"/studies/{judged.pk}/design/", "setup", f"Setup: {judged.name}"),
            (f"/studies/{judged.pk}/stages/1/items/", "items-stage1", "Stage 1 items · Attribute correctness"),
            (f"/studies/{judged.pk}/stages/3/items/", "items-stage3", "Stage 3 items · Compare two responses"),
            (f"/items/{judged_item.pk}/", "item-judged", f"Item {judged_item.pk} · stage 1 · Attribute correctness"),
            (f"/items/{open_item.pk}/", "item-stage3", f"Item {open_item.pk} · stage 3 · Compare two responses"),
            ("/studies/new/", "new-study", "New study"),
            ("/", "home", "Your studies"),
        ):
            current.goto(f"{live_server.url}{path}")
            expect(current.get_by_role("heading", name=heading, exact=True)).to_be_visible()
            screenshot(current, f"{name}-{suffix}")
            _no_horizontal_scroll(current)
            if name == "dashboard":
                expect(current.locator("#flags-heading")).to_contain_text("(1)")
                expect(current.locator("body")).to_contain_text("Mentions self-harm")
    assert problems == []


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_annotation_screens_fit_a_phone(
    phone_page: Page, live_server: object, judged: Study, stage: int, problems: PageProblems
) -> None:
    login_with_keyboard(phone_page, live_server.url, "annotator", "pw-annotator-123")
    phone_page.goto(f"{live_server.url}/studies/{judged.pk}/stages/{stage}/work/")
    expect(phone_page.locator(".attr.current")).to_be_visible()
    _no_horizontal_scroll(phone_page)
    # One column: the history (stage 1) or response A (stage 3) sits above what follows it.
    if stage == 1:
        history = phone_page.locator("#conversations").bounding_box()
        attributes = phone_page.locator("#attributes").bounding_box()
        assert history["y"] + history["height"] <= attributes["y"]
    if stage == 3:
        a = phone_page.locator("#response-a").bounding_box()
        b = phone_page.locator("#response-b").bounding_box()
        assert a["y"] < b["y"] and a["x"] == b["x"]
    screenshot(phone_page, f"stage{stage}-phone")
    assert problems == []


def test_annotator_study_page_and_my_judgments(
    page: Page, live_server: object, judged: Study, problems: PageProblems
) -> None:
    login_with_keyboard(page, live_server.url, "annotator", "pw-annotator-123")
    page.goto(f"{live_server.url}/studies/{judged.pk}/")
    expect(page.get_by_role("link", name="Start stage 2")).to_be_visible()
    screenshot(page, "study-annotator-laptop")
    page.goto(f"{live_server.url}/studies/{judged.pk}/mine/")
    expect(page.get_by_role("link", name="Change judgment of item", exact=False)).to_have_count(1)
    screenshot(page, "my-judgments-laptop")
    assert problems == []

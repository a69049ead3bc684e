"""axe-core (bundled by the axe-playwright-python package; nothing is downloaded) finds no
accessibility violations on the annotation screens and the researcher pages."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from annotate.models import Item
from personalization.models import Study
from tests.browser.conftest import PageProblems, login_with_keyboard
from tests.screens.builders import populate_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def populated(study: Study) -> Study:
    populate_study(study)
    return study


def _violations(page: Page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[node['target'] for node in v['nodes']][:3]}"
        for v in results.response["violations"]
    ]


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_annotation_screens_have_no_axe_violations(
    page: Page, live_server: object, populated: Study, annotator: User, stage: int, problems: PageProblems
) -> None:
    login_with_keyboard(page, live_server.url, "annotator", "pw-annotator-123")
    page.goto(f"{live_server.url}/studies/{populated.pk}/stages/{stage}/work/")
    expect(page.locator(".attr.current")).to_be_visible()
    assert _violations(page) == []
    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    assert _violations(page) == []
    assert problems == []


def test_study_pages_have_no_axe_violations(
    page: Page, live_server: object, populated: Study, problems: PageProblems
) -> None:
    login_with_keyboard(page, live_server.url, "owner", "pw-owner-123")
    for path in (
        "/",
        f"/studies/{populated.pk}/",
        f"/studies/{populated.pk}/dashboard/",
        f"/studies/{populated.pk}/design/",
        f"/studies/{populated.pk}/mine/",
        f"/studies/{populated.pk}/stages/3/items/",
        f"/items/{Item.objects.filter(study=populated, stage=3).first().pk}/",
        "/studies/new/",
    ):
        page.goto(f"{live_server.url}{path}")
        assert _violations(page) == [], path
    assert problems == []

"""An annotator completes an item of each stage with the keyboard alone; the stored judgments
are checked afterwards. Screenshots of every screen land in test-artifacts/screenshots/."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from annotate.models import Assignment
from annotate.services import assignment_next, assignment_submit
from judgments.models import ItemFeedback, Judgment, JudgmentRevision
from personalization.models import Study
from tests.browser.conftest import PageProblems, login_with_keyboard, screenshot
from tests.screens.builders import populate_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def populated(study: Study) -> Study:
    populate_study(study)
    return study


def _work(page: Page, live_server: object, study: Study, stage: int) -> None:
    page.goto(f"{live_server.url}/studies/{study.pk}/stages/{stage}/work/")
    expect(page.locator(".attr.current")).to_be_visible()


def _submitted(annotator: User, stage: int) -> Assignment:
    return Assignment.objects.get(annotator=annotator, stage=stage, status=Assignment.Status.SUBMITTED)


def test_stage_1_item_completed_with_the_keyboard_only(
    page: Page, live_server: object, populated: Study, annotator: User, problems: PageProblems
) -> None:
    login_with_keyboard(page, live_server.url, "annotator", "pw-annotator-123")
    _work(page, live_server, populated, 1)
    first_item = page.locator(".attr").count()
    assert first_item == 3
    # Untrusted text is shown as text and never runs.
    expect(page.locator("#conversation-list")).to_contain_text("<script>window.__pwned=1</script>")
    assert page.evaluate("window.__pwned") is None
    # A long turn starts collapsed; "e" expands the evidence turns of the focused attribute.
    expect(page.locator(".turn.collapsed")).to_have_count(1)
    page.keyboard.press("e")
    expect(page.locator(".turn.collapsed")).to_have_count(0)
    screenshot(page, "stage1-laptop")

    page.keyboard.press("n")
    page.keyboard.type("the reason is thin")
    page.keyboard.press("Escape")
    page.keyboard.press("1")  # makes sense -> moves to attribute 2
    page.keyboard.press("2")  # maybe -> attribute 3
    page.keyboard.press("3")  # doesn't make sense -> Submit gets focus
    page.keyboard.press("k")  # from Submit back to attribute 3 ...
    page.keyboard.press("1")  # ... and change my mind
    page.keyboard.press("m")
    page.keyboard.type("Likes long walks")
    page.keyboard.press("Escape")
    page.keyboard.press("c")
    page.keyboard.type("clear case")
    page.keyboard.press("Escape")
    page.keyboard.press("f")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#status")).to_contain_text("Submitted")

    assignment = _submitted(annotator, 1)
    judgments = Judgment.objects.filter(annotator=annotator, stage=1, subject=assignment.item.subject)
    answers = {j.attribute.text.split(" <")[0]: j.answer for j in judgments.select_related("attribute")}
    subject_n = assignment.item.subject.external_id.rsplit("-", 1)[1]
    assert answers == {
        f"Person {subject_n} attribute 0": "makes_sense",
        f"Person {subject_n} attribute 1": "maybe",
        f"Person {subject_n} attribute 2": "makes_sense",
    }
    assert judgments.get(attribute__text__startswith=f"Person {subject_n} attribute 0").note == "the reason is thin"
    feedback = ItemFeedback.objects.get(annotator=annotator, stage=1)
    assert (feedback.note, feedback.missing_attributes, feedback.flag) == ("clear case", "Likes long walks", True)
    assert feedback.guidelines_version == 1
    assert assignment.active_ms > 0
    # The next item was preloaded by the submit response and is already on screen.
    expect(page.locator(".attr")).to_have_count(3)
    expect(page.locator("#note")).to_have_value("")
    assert problems == []


def test_stage_2_item_completed_with_the_keyboard_only(
    page: Page, live_server: object, populated: Study, annotator: User, problems: PageProblems
) -> None:
    login_with_keyboard(page, live_server.url, "annotator", "pw-annotator-123")
    _work(page, live_server, populated, 2)
    expect(page.locator("#prompt-text")).to_contain_text("Plan a dinner party")
    expect(page.locator("#definition")).to_contain_text("explicitly or implicitly")
    count = page.locator(".attr").count()
    assert count == 6  # the attributes of both subjects paired with the prompt, pooled
    screenshot(page, "stage2-laptop")
    for i in range(count):
        page.keyboard.press("y" if i % 2 == 0 else "n")
    page.keyboard.press("Enter")  # Submit has focus once everything is answered
    expect(page.locator("#status")).to_contain_text("Submitted")

    assignment = _submitted(annotator, 2)
    judgments = Judgment.objects.filter(annotator=annotator, stage=2, prompt=assignment.item.prompt)
    assert judgments.count() == 6
    assert sorted(judgments.values_list("answer", flat=True)) == ["no"] * 3 + ["yes"] * 3

    # The second (last) prompt came back with the submit response; after it, no more work.
    expect(page.locator(".attr")).to_have_count(6)
    for _ in range(6):
        page.keyboard.press("1")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#done-heading")).to_be_focused()
    expect(page.locator("#progress-mine-label")).to_contain_text("You: 1 done")
    assert Assignment.objects.filter(annotator=annotator, stage=2, status=Assignment.Status.SUBMITTED).count() == 2
    assert problems == []


def test_stage_3_item_completed_with_the_keyboard_only(
    page: Page, live_server: object, populated: Study, annotator: User, problems: PageProblems
) -> None:
    login_with_keyboard(page, live_server.url, "annotator", "pw-annotator-123")
    _work(page, live_server, populated, 3)
    expect(page.locator(".caution")).to_contain_text(
        "Mentioning an attribute does not by itself make a response better"
    )
    # Nothing on the page says which response is the personalized one.
    body = page.locator("#item-form").inner_text().lower()
    assert "personalized" not in body.replace("personalized answer for subject", "")
    assert "generic" not in body.replace("generic answer to prompt", "")
    screenshot(page, "stage3-laptop")
    page.keyboard.press("5")  # attribute 1: B much better
    page.keyboard.press("2")  # attribute 2: B worse
    page.keyboard.press("Control+Enter")
    expect(page.locator("#status")).to_contain_text("Submitted")

    assignment = _submitted(annotator, 3)
    stored = dict(
        Judgment.objects.filter(annotator=annotator, stage=3, pair=assignment.item.pair).values_list(
            "attribute__text", "answer"
        )
    )
    shown_b_vs_a = ["5", "2"]
    # Stored in personalized-vs-generic terms whatever side the personalized response was on.
    expected = shown_b_vs_a if assignment.personalized_side == "B" else [str(6 - int(a)) for a in shown_b_vs_a]
    assert [stored[text] for text in sorted(stored)] == expected
    assert set(Judgment.objects.filter(annotator=annotator, stage=3).values_list("personalized_side", flat=True)) == {
        assignment.personalized_side
    }
    assert problems == []


def test_skip_help_and_draft_with_the_keyboard(
    page: Page, live_server: object, populated: Study, annotator: User, problems: PageProblems
) -> None:
    login_with_keyboard(page, live_server.url, "annotator", "pw-annotator-123")
    _work(page, live_server, populated, 2)
    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    screenshot(page, "help-overlay")
    page.keyboard.press("Escape")
    expect(page.locator("#help-dialog")).to_be_hidden()

    page.keyboard.press("y")
    first = Assignment.objects.get(annotator=annotator, stage=2, status=Assignment.Status.LEASED)
    # The draft is autosaved shortly after an answer.
    expect(page.locator("#save-state")).to_have_text("Draft saved")
    first.refresh_from_db()
    assert len(first.draft["answers"]) == 1

    page.keyboard.press("s")
    expect(page.locator("#skip-dialog")).to_be_visible()
    page.keyboard.type("not sure about this prompt")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("Skipped")
    first.refresh_from_db()
    assert (first.status, first.skip_reason) == (Assignment.Status.SKIPPED, "not sure about this prompt")
    assert not Judgment.objects.filter(annotator=annotator).exists()
    assert problems == []


def test_changing_an_earlier_judgment_keeps_the_history(
    page: Page, live_server: object, populated: Study, annotator: User, problems: PageProblems
) -> None:
    login_with_keyboard(page, live_server.url, "annotator", "pw-annotator-123")
    _work(page, live_server, populated, 2)
    for _ in range(6):
        page.keyboard.press("y")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#status")).to_contain_text("Submitted")
    assignment = _submitted(annotator, 2)

    page.goto(f"{live_server.url}/studies/{populated.pk}/mine/")
    page.get_by_role("link", name=f"Change judgment of item {assignment.item_id}").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/assignments/{assignment.pk}/edit/")
    expect(page.locator(".attr.current")).to_be_visible()
    # My earlier answers are filled in.
    expect(page.locator(".attr input:checked")).to_have_count(6)
    page.keyboard.press("n")  # the first attribute: change yes -> no
    page.keyboard.press("Control+Enter")
    expect(page.locator("#edit-done")).to_be_visible()

    assert Judgment.objects.filter(annotator=annotator, stage=2, answer="no").count() == 1
    assert JudgmentRevision.objects.filter(judgment__annotator=annotator, answer="yes").count() == 1
    assert problems == []


def test_a_subject_judging_their_own_attributes_is_told_so(
    page: Page, live_server: object, populated: Study, annotator: User, problems: PageProblems
) -> None:
    populated.subjects.filter(external_id="hashed-ip-1").update(user=annotator)
    login_with_keyboard(page, live_server.url, "annotator", "pw-annotator-123")
    _work(page, live_server, populated, 1)
    expect(page.locator("#first-person")).to_be_visible()
    expect(page.locator(".attr").first).to_contain_text("Person 1 attribute")
    assert problems == []


def test_a_closed_study_shows_earlier_judgments_read_only(
    page: Page, live_server: object, populated: Study, annotator: User, problems: PageProblems
) -> None:
    assignment = assignment_next(study=populated, stage=3, annotator=annotator)
    ids = list(assignment.item.attributes.values_list("id", flat=True))
    assignment_submit(assignment=assignment, answers=dict.fromkeys(ids, "4"))
    Study.objects.filter(pk=populated.pk).update(status=Study.Status.CLOSED)

    login_with_keyboard(page, live_server.url, "annotator", "pw-annotator-123")
    page.goto(f"{live_server.url}/assignments/{assignment.pk}/edit/")
    expect(page.locator("#status")).to_contain_text("This study is closed")
    # My answers, shown as I gave them (B vs A), whichever side the personalized response was on.
    expect(page.locator(".attr input[value='4']:checked")).to_have_count(len(ids))
    expect(page.locator("#submit-button")).to_be_disabled()
    page.keyboard.press("5")
    expect(page.locator(".attr input[value='5']:checked")).to_have_count(0)
    assert problems == []

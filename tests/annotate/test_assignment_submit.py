"""annotate.services.assignment_submit: judgments stored once, edits kept as revisions."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from annotate.models import Assignment, Item
from annotate.services import assignment_next, assignment_submit
from judgments.models import ItemFeedback, Judgment, JudgmentRevision
from personalization.models import Study

pytestmark = pytest.mark.django_db


def _answers(item: Item, answer: str) -> dict[int, str]:
    return {a.pk: answer for a in item.attributes.all()}


def test_submit_stores_one_judgment_per_attribute_with_guidelines_version(study, annotator, stage1_items) -> None:
    (item,) = stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    assignment_submit(assignment=assignment, answers=_answers(item, "makes_sense"), note="ok", active_ms=1234)
    judgments = Judgment.objects.filter(annotator=annotator, subject=item.subject)
    assert judgments.count() == item.attributes.count()
    assert {j.guidelines_version for j in judgments} == {1}
    assert {j.time_spent_ms for j in judgments} == {1234}
    assert ItemFeedback.objects.get(annotator=annotator).note == "ok"
    item.refresh_from_db()
    assert (item.slots_taken, item.done_count) == (1, 1)
    assert Assignment.objects.get(pk=assignment.pk).status == "submitted"


def test_double_submit_stores_one_judgment_and_counts_once(study, annotator, stage1_items) -> None:
    (item,) = stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    for _ in range(2):
        assignment_submit(assignment=assignment, answers=_answers(item, "maybe"), active_ms=10)
    assert Judgment.objects.filter(annotator=annotator).count() == item.attributes.count()
    assert not JudgmentRevision.objects.exists()
    item.refresh_from_db()
    assert item.done_count == 1


def test_edit_while_open_updates_and_keeps_revision(study, annotator, stage1_items) -> None:
    (item,) = stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    assignment_submit(assignment=assignment, answers=_answers(item, "maybe"))
    assignment_submit(assignment=assignment, answers=_answers(item, "doesnt_make_sense"))
    assert set(Judgment.objects.filter(annotator=annotator).values_list("answer", flat=True)) == {"doesnt_make_sense"}
    assert set(JudgmentRevision.objects.values_list("answer", flat=True)) == {"maybe"}
    assert JudgmentRevision.objects.count() == item.attributes.count()


def test_closed_study_refuses_changes(study, annotator, stage1_items) -> None:
    (item,) = stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    assignment_submit(assignment=assignment, answers=_answers(item, "maybe"))
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    study.refresh_from_db()
    assignment.study = study
    with pytest.raises(ValidationError, match="closed"):
        assignment_submit(assignment=assignment, answers=_answers(item, "makes_sense"))
    assert set(Judgment.objects.values_list("answer", flat=True)) == {"maybe"}


def test_every_shown_attribute_must_be_answered(study, annotator, stage1_items) -> None:
    (item,) = stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    first = item.attributes.order_by("id").first()
    with pytest.raises(ValidationError, match="have no answer"):
        assignment_submit(assignment=assignment, answers={first.pk: "maybe"})
    with pytest.raises(ValidationError, match="not shown on this item"):
        assignment_submit(assignment=assignment, answers={**_answers(item, "maybe"), 999999: "maybe"})
    with pytest.raises(ValidationError, match=r"answers\[\d+\]: 'yes' is not a stage 1 answer"):
        assignment_submit(assignment=assignment, answers=_answers(item, "yes"))
    assert not Judgment.objects.exists()


def test_stage3_answers_are_stored_as_personalized_vs_generic(study, annotator, stage3_item) -> None:
    assignment = assignment_next(study=study, stage=3, annotator=annotator)
    assert assignment.personalized_side in ("A", "B")
    # "5" = the right-hand response (B) is much better.
    assignment_submit(assignment=assignment, answers=_answers(stage3_item, "5"))
    expected = "5" if assignment.personalized_side == "B" else "1"
    judgment = Judgment.objects.get(annotator=annotator, attribute__in=stage3_item.attributes.all()[:1])
    assert judgment.answer == expected
    assert judgment.personalized_side == assignment.personalized_side
    assert judgment.personalized_response_id == stage3_item.personalized_response_id

"""judgments.services: human_judgments_record and item_feedback_record."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from judgments.models import ItemFeedback, Judgment, JudgmentRevision
from judgments.services import human_judgments_record, item_feedback_record
from personalization.models import Study
from tests.annotate.conftest import make_pair_with_responses, make_subject

pytestmark = pytest.mark.django_db


def test_records_and_revises(study, annotator) -> None:
    subject = make_subject(study, attributes=2)
    first, second = subject.attributes.order_by("id")
    answers = {first.pk: "maybe", second.pk: "makes_sense"}
    human_judgments_record(study=study, stage=1, annotator=annotator, subject_id=subject.pk, answers=answers)
    human_judgments_record(study=study, stage=1, annotator=annotator, subject_id=subject.pk, answers=answers)
    assert not JudgmentRevision.objects.exists()
    human_judgments_record(
        study=study,
        stage=1,
        annotator=annotator,
        subject_id=subject.pk,
        answers={**answers, first.pk: "doesnt_make_sense"},
        attribute_notes={second.pk: "a note"},
    )
    assert Judgment.objects.get(attribute=first).answer == "doesnt_make_sense"
    assert Judgment.objects.get(attribute=second).note == "a note"
    assert sorted(JudgmentRevision.objects.values_list("answer", flat=True)) == ["makes_sense", "maybe"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stage": 1, "answers": {0: "yes"}}, r"answers\[0\]: 'yes' is not a stage 1 answer"),
        ({"stage": 2, "answers": {}}, "prompt: a stage 2 judgment needs a prompt"),
        ({"stage": 9, "answers": {}}, "stage: 9 is not a stage"),
    ],
)
def test_bad_input_is_named(study, annotator, kwargs: dict, message: str) -> None:
    subject = make_subject(study, attributes=1)
    with pytest.raises(ValidationError, match=message):
        human_judgments_record(study=study, annotator=annotator, subject_id=subject.pk, **kwargs)


def test_stage3_needs_the_side(study, annotator) -> None:
    pair = make_pair_with_responses(make_subject(study, attributes=1))
    attribute = pair.subject.attributes.get()
    with pytest.raises(ValidationError, match="personalized_side"):
        human_judgments_record(study=study, stage=3, annotator=annotator, pair_id=pair.pk, answers={attribute.pk: "3"})
    assert not Judgment.objects.exists()


def test_closed_study_refuses_writes(study, annotator) -> None:
    subject = make_subject(study, attributes=1)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    study.refresh_from_db()
    with pytest.raises(ValidationError, match="closed"):
        item_feedback_record(study=study, stage=1, annotator=annotator, subject_id=subject.pk, note="x")
    assert not ItemFeedback.objects.exists()


def test_feedback_is_one_row_per_annotator_and_item(study, annotator) -> None:
    subject = make_subject(study, attributes=1)
    item_feedback_record(study=study, stage=1, annotator=annotator, subject_id=subject.pk, note="first")
    item_feedback_record(study=study, stage=1, annotator=annotator, subject_id=subject.pk, note="second", flag=True)
    (feedback,) = ItemFeedback.objects.all()
    assert (feedback.note, feedback.flag) == ("second", True)

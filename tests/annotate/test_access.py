"""annotate.access: each helper answers 404 to anyone not allowed."""

from __future__ import annotations

import pytest
from django.http import Http404

from annotate.access import (
    assignment_get_for_annotator,
    item_get_for_owner,
    study_get_for_annotator,
    study_get_for_member,
    study_get_for_owner,
)
from annotate.services import assignment_next
from tests.factories import StudyFactory

pytestmark = pytest.mark.django_db


def test_study_for_member(study, owner, annotator, outsider) -> None:
    assert study_get_for_member(user=owner, study_id=study.pk) == study
    assert study_get_for_member(user=annotator, study_id=study.pk) == study
    with pytest.raises(Http404):
        study_get_for_member(user=outsider, study_id=study.pk)
    with pytest.raises(Http404):
        study_get_for_member(user=annotator, study_id=StudyFactory().pk)


def test_study_for_owner(study, owner, annotator) -> None:
    assert study_get_for_owner(user=owner, study_id=study.pk) == study
    with pytest.raises(Http404):
        study_get_for_owner(user=annotator, study_id=study.pk)


def test_study_for_annotator_leaves_out_owners_who_do_not_annotate(study, owner, annotator, outsider) -> None:
    assert study_get_for_annotator(user=annotator, study_id=study.pk) == study
    for user in (owner, outsider):
        with pytest.raises(Http404):
            study_get_for_annotator(user=user, study_id=study.pk)


def test_item_for_owner_only(study, owner, annotator, stage1_items, other_study_item) -> None:
    (item,) = stage1_items(1)
    assert item_get_for_owner(user=owner, item_id=item.pk) == item
    for user, item_id in ((annotator, item.pk), (owner, other_study_item.pk)):
        with pytest.raises(Http404):
            item_get_for_owner(user=user, item_id=item_id)


def test_assignment_only_for_its_own_annotator_while_a_member(
    study, annotator, annotators, owner, stage1_items
) -> None:
    stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    assert assignment_get_for_annotator(user=annotator, assignment_id=assignment.pk) == assignment
    for other in (annotators[0], owner):
        with pytest.raises(Http404):
            assignment_get_for_annotator(user=other, assignment_id=assignment.pk)
    study.annotators.remove(annotator)
    with pytest.raises(Http404):
        assignment_get_for_annotator(user=annotator, assignment_id=assignment.pk)

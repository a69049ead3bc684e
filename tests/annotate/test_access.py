"""annotate.access: each helper answers 404 to anyone not allowed."""

from __future__ import annotations

import pytest
from django.http import Http404

from annotate.access import assignment_get_for_annotator, study_get_for_member, study_get_for_owner
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

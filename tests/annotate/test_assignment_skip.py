"""annotate.services.assignment_skip."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from annotate.models import Assignment
from annotate.services import assignment_next, assignment_skip, assignment_submit

pytestmark = pytest.mark.django_db


def test_skip_twice_frees_the_slot_once(study, annotator, stage1_items) -> None:
    (item,) = stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    assignment_skip(assignment=assignment)
    assignment_skip(assignment=assignment)
    item.refresh_from_db()
    assert item.slots_taken == 0
    assert Assignment.objects.get(pk=assignment.pk).status == "skipped"


def test_a_submitted_item_cannot_be_skipped(study, annotator, stage1_items) -> None:
    (item,) = stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    assignment_submit(assignment=assignment, answers={a.pk: "maybe" for a in item.attributes.all()})
    with pytest.raises(ValidationError, match="already submitted"):
        assignment_skip(assignment=assignment)
    item.refresh_from_db()
    assert (item.slots_taken, item.done_count) == (1, 1)


def test_a_skipped_item_cannot_be_submitted(study, annotator, stage1_items) -> None:
    (item,) = stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    assignment_skip(assignment=assignment)
    with pytest.raises(ValidationError, match="skipped"):
        assignment_submit(assignment=assignment, answers={a.pk: "maybe" for a in item.attributes.all()})

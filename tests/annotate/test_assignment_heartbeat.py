"""annotate.services.assignment_heartbeat."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from annotate.models import Assignment
from annotate.services import assignment_heartbeat, assignment_next, assignments_reclaim_expired

pytestmark = pytest.mark.django_db


def test_heartbeat_extends_the_lease(study, annotator, stage1_items) -> None:
    stage1_items(1, lease_seconds=60)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=5))
    assignment_heartbeat(assignment=assignment)
    assert Assignment.objects.get(pk=assignment.pk).lease_expires_at > timezone.now() + timedelta(seconds=50)


def test_heartbeat_takes_back_an_expired_lease_while_a_slot_is_free(study, annotator, stage1_items) -> None:
    (item,) = stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert assignments_reclaim_expired(study=study) == 1
    assignment_heartbeat(assignment=assignment)
    assert assignment.status == "leased"
    item.refresh_from_db()
    assert item.slots_taken == 1


def test_heartbeat_on_an_expired_lease_of_a_full_item_fails(study, annotator, annotators, stage1_items) -> None:
    (item,) = stage1_items(1, k=1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert assignment_next(study=study, stage=1, annotator=annotators[0]).item_id == item.pk
    with pytest.raises(ValidationError, match="other annotators have taken"):
        assignment_heartbeat(assignment=assignment)
    item.refresh_from_db()
    assert item.slots_taken == 1

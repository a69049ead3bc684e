"""annotate.services.assignments_reclaim_expired (the lease sweeper)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import Assignment, Item
from annotate.services import assignment_next, assignments_reclaim_expired

pytestmark = pytest.mark.django_db


def test_sweeper_expires_lapsed_leases_and_returns_their_slots(study, annotator, annotators, stage1_items) -> None:
    items = stage1_items(2, k=3)
    live = assignment_next(study=study, stage=1, annotator=annotator)
    lapsed = assignment_next(study=study, stage=1, annotator=annotators[0])
    Assignment.objects.filter(pk=lapsed.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    assert assignments_reclaim_expired() == 1
    assert assignments_reclaim_expired() == 0
    assert Assignment.objects.get(pk=lapsed.pk).status == "expired"
    assert Assignment.objects.get(pk=live.pk).status == "leased"
    assert sum(i.slots_taken for i in type(items[0]).objects.filter(study=study)) == 1


def test_sweeper_respects_its_limit(study, annotators, stage1_items) -> None:
    stage1_items(1, k=3)
    for user in annotators[:3]:
        assignment_next(study=study, stage=1, annotator=user)
    Assignment.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert assignments_reclaim_expired(limit=2) == 2
    assert assignments_reclaim_expired(limit=2) == 1


def test_sweeping_many_leases_costs_a_constant_number_of_queries(
    study, annotators, stage1_items, django_assert_max_num_queries
) -> None:
    items = stage1_items(4, k=3)
    lapsed_at = timezone.now() - timedelta(seconds=1)
    Assignment.objects.bulk_create(
        [
            Assignment(item=item, study=study, stage=1, annotator=user, lease_expires_at=lapsed_at)
            for item in items
            for user in annotators[:3]
        ]
    )
    Item.objects.filter(study=study).update(slots_taken=3)
    with django_assert_max_num_queries(6):
        assert assignments_reclaim_expired() == 12
    assert set(Item.objects.filter(study=study).values_list("slots_taken", flat=True)) == {0}
    assert set(Assignment.objects.values_list("status", flat=True)) == {"expired"}

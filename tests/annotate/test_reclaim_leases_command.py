"""manage.py reclaim_leases: the periodic sweep returns every lapsed slot, in batches."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotate.models import Assignment, Item
from annotate.services import assignment_next

pytestmark = pytest.mark.django_db


def test_reclaim_leases_expires_all_lapsed_leases(study, annotator, annotators, stage1_items) -> None:
    stage1_items(3, k=3)
    leases = [assignment_next(study=study, stage=1, annotator=user) for user in [annotator, *annotators[:3]]]
    lapsed_ids = [a.pk for a in leases[1:]]
    Assignment.objects.filter(pk__in=lapsed_ids).update(lease_expires_at=timezone.now() - timedelta(seconds=5))

    out = StringIO()
    call_command("reclaim_leases", stdout=out)

    assert "Reclaimed 3 lapsed lease(s)." in out.getvalue()
    assert set(Assignment.objects.filter(pk__in=lapsed_ids).values_list("status", flat=True)) == {"expired"}
    assert Assignment.objects.get(pk=leases[0].pk).status == "leased"
    assert sum(Item.objects.filter(study=study).values_list("slots_taken", flat=True)) == 1

"""annotate.admin: read-only item and assignment pages, scoped to the studies a researcher owns."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from annotate.models import Assignment
from annotate.services import assignment_next
from tests.factories import StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher_client(owner, client):
    owner.user_permissions.add(*Permission.objects.filter(content_type__app_label="annotate"))
    client.force_login(owner)
    return client


def test_pages_load_and_show_only_owned_studies(study, annotator, researcher_client, stage1_items) -> None:
    stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    foreign = StudyFactory(name="Someone else's study")
    foreign.owners.add(UserFactory(username="other-owner"))
    for name in ("admin:annotate_item_changelist", "admin:annotate_assignment_changelist"):
        response = researcher_client.get(reverse(name))
        assert response.status_code == 200
        assert response.context["cl"].result_count == 1
    detail = researcher_client.get(reverse("admin:annotate_assignment_change", args=[assignment.pk]))
    assert detail.status_code == 200
    assert researcher_client.get(reverse("admin:annotate_item_add")).status_code == 403


def test_reclaim_action(study, annotator, researcher_client, stage1_items) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from annotate.models import Assignment

    stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    response = researcher_client.post(
        reverse("admin:annotate_assignment_changelist"),
        {"action": "reclaim_expired", "_selected_action": [assignment.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert Assignment.objects.get(pk=assignment.pk).status == "expired"


def test_assignments_cannot_be_deleted(study, annotator, researcher_client, stage1_items) -> None:
    # Deleting one would leave its slot counted and let a judged item pass for untouched.
    stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    assert researcher_client.get(reverse("admin:annotate_assignment_delete", args=[assignment.pk])).status_code == 403
    response = researcher_client.post(
        reverse("admin:annotate_assignment_changelist"),
        {"action": "delete_selected", "_selected_action": [assignment.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    assert Assignment.objects.filter(pk=assignment.pk).exists()

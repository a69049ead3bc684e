"""annotate.admin.ItemAdmin: researchers narrow or drop items until work on them has started."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from annotate.models import Item
from annotate.services import assignment_next
from tests.factories import AttributeFactory, SubjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher_client(owner, client):
    owner.user_permissions.add(*Permission.objects.filter(content_type__app_label="annotate"))
    client.force_login(owner)
    return client


def _change(client, item: Item, attribute_ids: list[int]):
    return client.post(
        reverse("admin:annotate_item_change", args=[item.pk]), {"attributes": ",".join(map(str, attribute_ids))}
    )


def test_untouched_item_attributes_can_be_narrowed(study, researcher_client, stage1_items) -> None:
    item = stage1_items(1)[0]
    keep = list(item.attributes.order_by("id"))[:1]
    response = _change(researcher_client, item, [a.pk for a in keep])
    assert response.status_code == 302, response.content[:500]
    assert list(item.attributes.all()) == keep


def test_attributes_of_another_study_are_rejected(study, researcher_client, stage1_items) -> None:
    item = stage1_items(1)[0]
    before = set(item.attributes.values_list("id", flat=True))
    foreign = AttributeFactory(subject=SubjectFactory())
    response = _change(researcher_client, item, [foreign.pk])
    assert response.status_code == 200  # the form comes back with an error
    assert set(item.attributes.values_list("id", flat=True)) == before


def test_item_with_an_assignment_is_frozen(study, annotator, researcher_client, stage1_items) -> None:
    item = stage1_items(1)[0]
    assignment_next(study=study, stage=1, annotator=annotator)
    before = set(item.attributes.values_list("id", flat=True))
    assert _change(researcher_client, item, [min(before)]).status_code == 403
    assert (
        researcher_client.post(reverse("admin:annotate_item_delete", args=[item.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert set(item.attributes.values_list("id", flat=True)) == before


def test_untouched_item_can_be_deleted(study, researcher_client, stage1_items) -> None:
    item = stage1_items(1)[0]
    response = researcher_client.post(reverse("admin:annotate_item_delete", args=[item.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Item.objects.filter(pk=item.pk).exists()

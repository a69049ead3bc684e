"""Choosing what feeds a stage: an item's attributes, a stage-3 item's responses, withdrawn items."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from annotate.design import item_choose, items_withdraw
from annotate.models import Item
from annotate.selectors import assignment_payload, study_progress
from annotate.services import assignment_next, assignment_skip, items_build
from personalization.models import Response, Stage
from tests.annotate.conftest import make_pair_with_responses, make_subject
from tests.factories import ResponseFactory


def test_narrowing_an_untouched_item_changes_what_annotators_judge(study, annotator, stage1_items) -> None:
    (item,) = stage1_items(1)
    keep = item.attributes.order_by("id").first()
    item_choose(study=study, item_id=item.pk, attribute_ids=[keep.pk])
    payload = assignment_payload(assignment=assignment_next(study=study, stage=1, annotator=annotator))
    assert [a["id"] for a in payload["attributes"]] == [keep.pk]


def test_attributes_of_another_subject_are_refused_and_nothing_changes(study, stage1_items) -> None:
    first, second = stage1_items(2)
    before = set(first.attributes.values_list("id", flat=True))
    foreign = second.attributes.first()
    with pytest.raises(ValidationError, match=rf"attributes: {foreign.pk} are not merged attributes"):
        item_choose(study=study, item_id=first.pk, attribute_ids=[*before, foreign.pk])
    assert set(first.attributes.values_list("id", flat=True)) == before


def test_an_item_must_keep_at_least_one_attribute(study, stage1_items) -> None:
    (item,) = stage1_items(1)
    with pytest.raises(ValidationError, match="choose at least one attribute, or withdraw"):
        item_choose(study=study, item_id=item.pk, attribute_ids=[])


def test_an_item_that_went_to_an_annotator_is_frozen(study, annotator, stage1_items) -> None:
    (item,) = stage1_items(1)
    assignment_skip(assignment=assignment_next(study=study, stage=1, annotator=annotator))  # even skipped
    with pytest.raises(ValidationError, match=rf"items: {item.pk} already went to annotators"):
        item_choose(study=study, item_id=item.pk, attribute_ids=[item.attributes.first().pk])
    with pytest.raises(ValidationError, match="already went to annotators"):
        items_withdraw(study=study, item_ids=[item.pk])
    assert item.attributes.count() == 2 and not Item.objects.get(pk=item.pk).withdrawn


def test_items_of_another_study_are_not_found(study, other_study_item) -> None:
    with pytest.raises(ValidationError, match=rf"items: {other_study_item.pk} not in study"):
        items_withdraw(study=study, item_ids=[other_study_item.pk])


def test_a_stage3_item_can_compare_another_personalized_response(study, annotator, stage3_item) -> None:
    selected = ResponseFactory(pair=stage3_item.pair, mode=Response.Mode.SELECTED_ATTRIBUTES, text="Selected answer.")
    attribute = stage3_item.attributes.first()
    item_choose(study=study, item_id=stage3_item.pk, attribute_ids=[attribute.pk], personalized_response_id=selected.pk)
    assignment = assignment_next(study=study, stage=3, annotator=annotator)
    payload = assignment_payload(assignment=assignment)
    assert set(payload["responses"].values()) == {"Generic answer.", "Selected answer."}
    assert [a["id"] for a in payload["attributes"]] == [attribute.pk]


def test_stage3_responses_must_be_of_the_pair_and_of_the_right_kind(study, stage3_item) -> None:
    attribute_ids = list(stage3_item.attributes.values_list("id", flat=True))
    with pytest.raises(ValidationError, match="personalized_response: .* is not a personalized response"):
        item_choose(
            study=study,
            item_id=stage3_item.pk,
            attribute_ids=attribute_ids,
            personalized_response_id=stage3_item.generic_response_id,
        )
    elsewhere = make_pair_with_responses(make_subject(study)).responses.get(mode=Response.Mode.GENERIC)
    with pytest.raises(ValidationError, match="generic_response: .* is not a generic response to this pair"):
        item_choose(study=study, item_id=stage3_item.pk, attribute_ids=attribute_ids, generic_response_id=elsewhere.pk)
    stage3_item.refresh_from_db()
    assert stage3_item.personalized_response.mode == Response.Mode.ALL_ATTRIBUTES


def test_a_withdrawn_item_is_never_offered_not_counted_and_not_rebuilt(study, annotator, stage1_items) -> None:
    first, second = stage1_items(2)
    assert items_withdraw(study=study, item_ids=[first.pk]) == 1
    progress = study_progress(study=study, stage=1, annotator=annotator)
    assert (progress["items_total"], progress["items_withdrawn"], progress["mine_available"]) == (1, 1, 1)
    assert items_build(study=study, stage=1) == 0
    assert assignment_next(study=study, stage=1, annotator=annotator).item_id == second.pk
    items_withdraw(study=study, item_ids=[first.pk], withdrawn=False)
    assert study_progress(study=study, stage=1)["items_total"] == 2


def test_a_withdrawn_first_person_item_is_not_offered_to_its_subject(study, annotator) -> None:
    make_subject(study, user=annotator)
    items_build(study=study, stage=1)
    (own,) = Item.objects.filter(study=study, stage=1)
    items_withdraw(study=study, item_ids=[own.pk])
    assert assignment_next(study=study, stage=1, annotator=annotator) is None


def test_withdrawing_is_all_or_nothing(study, annotator, stage1_items) -> None:
    first, second = stage1_items(2)
    assignment_next(study=study, stage=1, annotator=annotator)  # takes the first item
    with pytest.raises(ValidationError):
        items_withdraw(study=study, item_ids=[first.pk, second.pk])
    assert not Item.objects.filter(withdrawn=True).exists()


def test_building_stage3_with_a_chosen_personalized_mode(study) -> None:
    subject = make_subject(study)
    pair = make_pair_with_responses(subject)  # generic + all_attributes
    selected = ResponseFactory(pair=pair, mode=Response.Mode.SELECTED_ATTRIBUTES, text="Selected.")
    selected.conditioned_on.set(subject.attributes.all()[:1])
    assert items_build(study=study, stage=3, personalized_mode="selected_attributes") == 1
    item = Item.objects.get(study=study, stage=3)
    assert item.personalized_response_id == selected.pk and item.attributes.count() == 1


def test_building_stage3_with_a_mode_no_pair_has_builds_nothing(study) -> None:
    make_pair_with_responses(make_subject(study))
    assert items_build(study=study, stage=3, personalized_mode="human_relevant_attributes") == 0


def test_building_with_an_unknown_mode_is_refused(study) -> None:
    with pytest.raises(ValidationError, match="personalized_mode: 'generic' is not a personalized response mode"):
        items_build(study=study, stage=3, personalized_mode="generic")


# --- the web pages -------------------------------------------------------------------------


def test_the_item_list_shows_a_stage_to_its_owner_only(study, owner_client, annotator_client, stage1_items) -> None:
    items = stage1_items(2)
    url = reverse("study-items", args=[study.pk, Stage.CORRECTNESS])
    page = owner_client.get(url)
    assert page.status_code == 200
    for item in items:
        assert reverse("item-detail", args=[item.pk]).encode() in page.content
    assert annotator_client.get(url).status_code == 404
    assert annotator_client.get(reverse("item-detail", args=[items[0].pk])).status_code == 404


def test_the_item_list_filters_by_state(study, owner_client, annotator, stage1_items) -> None:
    first, second = stage1_items(2)
    assignment_next(study=study, stage=1, annotator=annotator)
    url = reverse("study-items", args=[study.pk, Stage.CORRECTNESS])
    in_progress = owner_client.get(url, {"state": "in_progress"}).content
    waiting = owner_client.get(url, {"state": "waiting"}).content
    assert f"#{first.pk}<".encode() in in_progress and f"#{second.pk}<".encode() not in in_progress
    assert f"#{second.pk}<".encode() in waiting and f"#{first.pk}<".encode() not in waiting
    assert owner_client.get(url, {"state": "bogus"}).status_code == 404


def test_withdrawing_selected_items_from_the_list(study, owner_client, stage1_items) -> None:
    first, second = stage1_items(2)
    url = reverse("study-items", args=[study.pk, Stage.CORRECTNESS])
    response = owner_client.post(url, {"action": "withdraw", "items": [first.pk]}, follow=True)
    assert b"1 item withdrawn." in response.content
    assert list(Item.objects.filter(withdrawn=True).values_list("pk", flat=True)) == [first.pk]


def test_the_list_refuses_items_of_another_stage(study, owner_client, stage1_items, stage3_item) -> None:
    url = reverse("study-items", args=[study.pk, Stage.CORRECTNESS])
    response = owner_client.post(url, {"action": "withdraw", "items": [stage3_item.pk]}, follow=True)
    assert b"Select a valid choice" in response.content
    assert not Item.objects.filter(withdrawn=True).exists()


def test_saving_an_item_from_its_page(study, owner_client, stage3_item) -> None:
    selected = ResponseFactory(pair=stage3_item.pair, mode=Response.Mode.SELECTED_ATTRIBUTES, text="Selected.")
    attribute = stage3_item.attributes.first()
    url = reverse("item-detail", args=[stage3_item.pk])
    page = owner_client.get(url)
    assert b"Personalized answer." in page.content and b"Selected." in page.content
    response = owner_client.post(
        url,
        {
            "action": "save",
            "attributes": [attribute.pk],
            "generic_response": stage3_item.generic_response_id,
            "personalized_response": selected.pk,
        },
        follow=True,
    )
    assert b"Item saved." in response.content
    stage3_item.refresh_from_db()
    assert stage3_item.personalized_response_id == selected.pk
    assert list(stage3_item.attributes.values_list("id", flat=True)) == [attribute.pk]


def test_an_items_page_refuses_changes_once_annotators_have_it(study, owner_client, annotator, stage1_items) -> None:
    (item,) = stage1_items(1)
    assignment_next(study=study, stage=1, annotator=annotator)
    url = reverse("item-detail", args=[item.pk])
    page = owner_client.get(url)
    assert b"already went to annotators" in page.content and b'value="save"' not in page.content
    response = owner_client.post(url, {"action": "withdraw"}, follow=True)
    assert b"Nothing changed" in response.content
    assert not Item.objects.get(pk=item.pk).withdrawn

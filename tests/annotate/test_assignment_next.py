"""annotate.services.assignment_next: leasing, the k rule, ordering, skips and owner routing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotate.models import Assignment, Item
from annotate.services import assignment_next, assignment_skip, assignment_submit, items_build, personalized_side_for
from personalization.models import Study
from tests.annotate.conftest import make_subject

pytestmark = pytest.mark.django_db


def _submit(assignment: Assignment, answer: str = "maybe") -> None:
    answers = {a.pk: answer for a in assignment.item.attributes.all()}
    assignment_submit(assignment=assignment, answers=answers)


def test_returns_the_live_lease_before_leasing_anything_new(study, annotator, stage1_items) -> None:
    stage1_items(3)
    first = assignment_next(study=study, stage=1, annotator=annotator)
    again = assignment_next(study=study, stage=1, annotator=annotator)
    assert again.pk == first.pk
    assert Assignment.objects.filter(annotator=annotator).count() == 1
    assert first.status == "leased"
    assert first.lease_expires_at > timezone.now() + timedelta(seconds=800)


def test_each_item_goes_to_exactly_k_different_annotators(study, annotator, annotators, stage1_items) -> None:
    items = stage1_items(2, k=3)
    for user in [annotator, *annotators]:
        while (assignment := assignment_next(study=study, stage=1, annotator=user)) is not None:
            _submit(assignment)
    for item in items:
        item.refresh_from_db()
        assert (item.slots_taken, item.done_count) == (3, 3)
        holders = list(item.assignments.values_list("annotator_id", flat=True))
        assert len(holders) == len(set(holders)) == 3


def test_items_closest_to_completion_come_first(study, annotator, annotators, stage1_items) -> None:
    first, second = stage1_items(2, k=3)
    # Someone completes a judgment of the second item: it is now closer to completion.
    Assignment.objects.create(
        item=second,
        study=study,
        stage=1,
        annotator=annotators[0],
        status="submitted",
        lease_expires_at=timezone.now(),
        submitted_at=timezone.now(),
    )
    Item.objects.filter(pk=second.pk).update(slots_taken=1, done_count=1)
    assert assignment_next(study=study, stage=1, annotator=annotator).item_id == second.pk
    assert first.pk < second.pk


def test_skipped_item_is_never_offered_again_and_frees_its_slot(study, annotator, stage1_items) -> None:
    (item,) = stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    assignment_skip(assignment=assignment, reason="unreadable")
    item.refresh_from_db()
    assert (item.slots_taken, item.done_count) == (0, 0)
    assert assignment_next(study=study, stage=1, annotator=annotator) is None
    assert Assignment.objects.get(pk=assignment.pk).skip_reason == "unreadable"


def test_no_work_left_returns_none(study, annotator, stage1_items) -> None:
    stage1_items(1)
    _submit(assignment_next(study=study, stage=1, annotator=annotator))
    assert assignment_next(study=study, stage=1, annotator=annotator) is None


def test_full_items_are_not_offered(study, annotator, annotators, stage1_items) -> None:
    (item,) = stage1_items(1, k=2)
    assignment_next(study=study, stage=1, annotator=annotators[0])
    assignment_next(study=study, stage=1, annotator=annotators[1])
    assert assignment_next(study=study, stage=1, annotator=annotator) is None
    item.refresh_from_db()
    assert item.slots_taken == 2


def test_an_expired_lease_is_reclaimed_for_someone_else(study, annotator, annotators, stage1_items) -> None:
    (item,) = stage1_items(1, k=1)
    lapsed = assignment_next(study=study, stage=1, annotator=annotators[0])
    assert assignment_next(study=study, stage=1, annotator=annotator) is None
    Assignment.objects.filter(pk=lapsed.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    taken = assignment_next(study=study, stage=1, annotator=annotator)
    assert taken is not None and taken.item_id == item.pk
    assert Assignment.objects.get(pk=lapsed.pk).status == "expired"
    item.refresh_from_db()
    assert item.slots_taken == 1


def test_lapsed_leases_are_swept_at_most_once_per_interval_unless_nothing_is_free(
    study, annotator, annotators, stage1_items, settings
) -> None:
    settings.ATTUNE_LAZY_RECLAIM_SECONDS = 60
    first, second = stage1_items(2, k=1)
    lapsed = assignment_next(study=study, stage=1, annotator=annotators[0])  # sweeps, then marks the interval
    assert lapsed.item_id == first.pk
    Assignment.objects.filter(pk=lapsed.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    # Within the interval and with an item free: no sweep, the lapsed lease still holds its slot.
    other = assignment_next(study=study, stage=1, annotator=annotators[1])
    assert other.item_id == second.pk
    assert Assignment.objects.get(pk=lapsed.pk).status == "leased"
    # Nothing free: the sweep runs anyway, so nobody is told "no work" while a slot lies lapsed.
    taken = assignment_next(study=study, stage=1, annotator=annotator)
    assert taken is not None and taken.item_id == first.pk
    assert Assignment.objects.get(pk=lapsed.pk).status == "expired"


def test_every_next_sweeps_when_the_interval_is_zero(study, annotator, annotators, stage1_items, settings) -> None:
    settings.ATTUNE_LAZY_RECLAIM_SECONDS = 0
    stage1_items(2, k=1)
    lapsed = assignment_next(study=study, stage=1, annotator=annotators[0])
    Assignment.objects.filter(pk=lapsed.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assignment_next(study=study, stage=1, annotator=annotators[1])
    assert Assignment.objects.get(pk=lapsed.pk).status == "expired"


def test_own_lapsed_lease_is_renewed_when_nobody_reclaimed_it(study, annotator, stage1_items) -> None:
    stage1_items(2)
    lapsed = assignment_next(study=study, stage=1, annotator=annotator)
    Assignment.objects.filter(pk=lapsed.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    again = assignment_next(study=study, stage=1, annotator=annotator)
    assert again.pk == lapsed.pk
    assert again.lease_expires_at > timezone.now()


def test_an_item_whose_lease_lapsed_comes_back_to_its_annotator_last(
    study, annotator, annotators, stage1_items, settings
) -> None:
    settings.ATTUNE_LAZY_RECLAIM_SECONDS = 0  # every "next" sweeps lapsed leases
    first, _second = stage1_items(2, k=3)
    lapsed = assignment_next(study=study, stage=1, annotator=annotator)
    assert lapsed.item_id == first.pk
    Assignment.objects.filter(pk=lapsed.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    # Another annotator's call reclaims it; our annotator then gets the other item first.
    assignment_next(study=study, stage=1, annotator=annotators[0])
    nxt = assignment_next(study=study, stage=1, annotator=annotator)
    assert nxt.item_id != first.pk
    _submit(nxt)
    back = assignment_next(study=study, stage=1, annotator=annotator)
    assert back.pk == lapsed.pk and back.status == "leased"


def test_first_person_routing_gives_the_subject_their_own_item_without_a_slot(
    study, annotator, annotators, stage1_items
) -> None:
    stage1_items(2, k=1)
    own_subject = make_subject(study, user=annotator)
    items_build(study=study, stage=1)
    own_item = Item.objects.get(study=study, stage=1, subject=own_subject)

    mine = assignment_next(study=study, stage=1, annotator=annotator)
    assert mine.item_id == own_item.pk and mine.first_person
    _submit(mine, "makes_sense")
    own_item.refresh_from_db()
    assert (own_item.slots_taken, own_item.done_count) == (0, 0)
    # The subject never gets their own item as a third party...
    while (a := assignment_next(study=study, stage=1, annotator=annotator)) is not None:
        assert a.item_id != own_item.pk and not a.first_person
        _submit(a)
    # ...and the k third-party slots of it are all still there for others.
    third_party = []
    while (a := assignment_next(study=study, stage=1, annotator=annotators[0])) is not None:
        third_party.append(a.item_id)
        _submit(a)
    assert own_item.pk in third_party
    own_item.refresh_from_db()
    assert (own_item.slots_taken, own_item.done_count) == (1, 1)


def test_a_first_person_claim_locks_only_the_item_row(study, annotator, stage1_items) -> None:
    # Locking the study row too (through a join) would queue every first-person claim of the
    # study behind each other and behind a whole import, which holds that row.
    make_subject(study, user=annotator)
    items_build(study=study, stage=1)
    with CaptureQueriesContext(connection) as queries:
        assert assignment_next(study=study, stage=1, annotator=annotator).first_person
    locking = [q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"]]
    assert connection.vendor != "postgresql" or locking, "the claim takes a row lock on PostgreSQL"
    assert all("personalization_study" not in sql for sql in locking), locking


def test_a_study_that_is_not_open_hands_out_nothing(study, annotator, stage1_items) -> None:
    stage1_items(1)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
    study.refresh_from_db()
    with pytest.raises(ValidationError, match="draft"):
        assignment_next(study=study, stage=1, annotator=annotator)


def test_bad_stage_is_rejected(study, annotator) -> None:
    with pytest.raises(ValidationError, match="stage: 4 is not a stage"):
        assignment_next(study=study, stage=4, annotator=annotator)


def test_stage3_side_is_stable_per_annotator_and_varies_across_annotators(study, annotators, stage3_item) -> None:
    Item.objects.filter(pk=stage3_item.pk).update(k=5)
    for user in annotators:
        assignment = assignment_next(study=study, stage=3, annotator=user)
        assert assignment.personalized_side == personalized_side_for(item_seed=stage3_item.seed, annotator_id=user.pk)
        assert assignment_next(study=study, stage=3, annotator=user).personalized_side == assignment.personalized_side
    # Across annotators the side is balanced, not fixed (ids are arbitrary, so look at many).
    sides = [personalized_side_for(item_seed=stage3_item.seed, annotator_id=i) for i in range(1, 201)]
    assert 60 < sides.count("A") < 140

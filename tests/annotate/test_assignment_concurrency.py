"""Races on the assignment engine, with real threads and one database connection per thread.

On PostgreSQL (CI sets DATABASE_URL) the threads really run at the same time, and what keeps
the counts right is the engine's row locks, SKIP LOCKED claims and conditional UPDATEs. SQLite's
shared in-memory test database refuses concurrent writers outright ("table is locked") instead
of waiting, so there the threads take turns on a lock around each service call: the
interleavings are still arbitrary, so the bookkeeping (k per item, no duplicates, slots freed
once) is still exercised, though the database locks are not.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.utils import timezone

from annotate.models import Assignment, Item
from annotate.services import assignment_next, assignment_submit, assignments_reclaim_expired
from judgments.models import Judgment
from personalization.models import Stage, Study, StudyStage
from tests.annotate.conftest import make_subject
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _turns() -> contextlib.AbstractContextManager:
    """Serializes service calls on SQLite only (see the module docstring)."""
    return threading.Lock() if connection.vendor == "sqlite" else contextlib.nullcontext()


def _race(workers: list[Callable[[], None]]) -> None:
    """Starts every worker at the same instant, each in its own thread and connection; re-raises failures."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(work: Callable[[], None]) -> None:
        try:
            barrier.wait(timeout=30)
            work()
        except BaseException as error:  # noqa: BLE001 - reported to the main thread below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert not errors, errors


def _study(*, items: int, k: int) -> tuple[Study, list]:
    study = Study.objects.create(name="race", status=Study.Status.OPEN)
    for stage in Stage:
        StudyStage.objects.create(study=study, stage=stage, judgments_per_item=k)
    for _ in range(items):
        make_subject(study, attributes=2)
    from annotate.services import items_build

    items_build(study=study, stage=1)
    users = [UserFactory(username=f"racer{i}") for i in range(12)]
    study.annotators.add(*users)
    return study, users


def _answers(assignment: Assignment) -> dict[int, str]:
    return {a.pk: "makes_sense" for a in assignment.item.attributes.all()}


def test_racing_for_the_last_slot_only_one_wins() -> None:
    study, users = _study(items=1, k=3)
    item = Item.objects.get(study=study)
    # Two of the three slots are already judged.
    for user in users[:2]:
        assignment = assignment_next(study=study, stage=1, annotator=user)
        assignment_submit(assignment=assignment, answers=_answers(assignment))
    turn = _turns()
    won: list[int] = []

    def ask(user) -> Callable[[], None]:
        def work() -> None:
            with turn:
                if assignment_next(study=study, stage=1, annotator=user) is not None:
                    won.append(user.pk)

        return work

    _race([ask(u) for u in users[2:]])
    assert len(won) == 1
    item.refresh_from_db()
    assert (item.slots_taken, item.done_count) == (3, 2)
    assert item.assignments.count() == 3


def test_many_annotators_working_through_a_study_give_exactly_k_judgments_per_item() -> None:
    study, users = _study(items=6, k=3)
    turn = _turns()

    def annotate(user) -> Callable[[], None]:
        def work() -> None:
            while True:
                with turn:
                    assignment = assignment_next(study=study, stage=1, annotator=user)
                if assignment is None:
                    return
                with turn:
                    assignment_submit(assignment=assignment, answers=_answers(assignment))

        return work

    _race([annotate(u) for u in users])
    for item in Item.objects.filter(study=study):
        assert (item.slots_taken, item.done_count) == (3, 3), item
        judges = Counter(
            Judgment.objects.filter(subject=item.subject_id, stage=1).values_list("annotator_id", flat=True)
        )
        assert len(judges) == 3 and set(judges.values()) == {item.attributes.count()}
    per_rater = Counter(Judgment.objects.values_list("annotator_id", "subject_id", "attribute_id"))
    assert set(per_rater.values()) == {1}


def test_a_double_submitted_form_stores_one_judgment() -> None:
    study, users = _study(items=1, k=3)
    assignment = assignment_next(study=study, stage=1, annotator=users[0])
    answers = _answers(assignment)
    turn = _turns()

    def submit() -> None:
        with turn:
            mine = Assignment.objects.select_related("item", "study", "annotator").get(pk=assignment.pk)
            assignment_submit(assignment=mine, answers=answers, active_ms=500)

    _race([submit, submit, submit])
    assert Judgment.objects.filter(annotator=users[0]).count() == len(answers)
    item = Item.objects.get(study=study)
    assert (item.slots_taken, item.done_count) == (1, 1)


def test_an_expired_lease_is_reclaimed_once_while_its_owner_submits() -> None:
    study, users = _study(items=1, k=1)
    lapsed = assignment_next(study=study, stage=1, annotator=users[0])
    Assignment.objects.filter(pk=lapsed.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=5))
    turn = _turns()
    outcome: dict[str, object] = {}

    def submit() -> None:
        with turn:
            mine = Assignment.objects.select_related("item", "study", "annotator").get(pk=lapsed.pk)
            try:
                assignment_submit(assignment=mine, answers=_answers(mine))
            except ValidationError as error:
                # A legitimate outcome: the other annotator took the reclaimed slot first.
                outcome["refused"] = error.messages[0]

    def sweep() -> None:
        with turn:
            outcome["reclaimed"] = assignments_reclaim_expired(study=study)

    def someone_else() -> None:
        with turn:
            outcome["other"] = assignment_next(study=study, stage=1, annotator=users[1])

    _race([submit, sweep, someone_else])
    item = Item.objects.get(study=study)
    lapsed.refresh_from_db()
    # However the three interleave, the item ends with at most k slots, and the slot count
    # matches the live leases plus submissions.
    live = Assignment.objects.filter(item=item, status__in=["leased", "submitted"]).count()
    assert item.slots_taken == live <= 1
    assert item.done_count == Assignment.objects.filter(item=item, status="submitted").count()
    # Exactly one of the two annotators ends up with the single slot.
    other = outcome.get("other")
    if lapsed.status == "submitted":
        assert other is None and "refused" not in outcome
        assert Judgment.objects.filter(annotator=users[0]).count() == 2
    else:
        assert other is not None and other.item_id == item.pk
        assert "other annotators have taken" in outcome["refused"]
        assert not Judgment.objects.filter(annotator=users[0]).exists()

"""Writes of the annotation layer: leasing items to annotators, heartbeats, drafts, submissions
and skips. Study design (pairs, items) lives in annotate.design and is re-exported here.

Locking discipline (see each function's docstring):
- Claiming a slot locks one Item row with FOR UPDATE SKIP LOCKED and bumps `slots_taken` with a
  conditional UPDATE (`... WHERE slots_taken < k`); the check constraint `slots_taken <= k`
  backs both up.
- Everything that changes one assignment (submit, skip, heartbeat, sweep) first locks that
  Assignment row, then updates its Item. The order is always assignment, then item, so these
  paths cannot deadlock with each other; the claim path locks a single item and only inserts
  assignments.
- No transaction does I/O other than these few statements.
SQLite ignores FOR UPDATE; the project opens its SQLite transactions IMMEDIATE, which
serializes writers, and the conditional UPDATEs and constraints still hold.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotate.design import items_build, study_design_pairs
from annotate.models import Assignment, Item
from annotate.selectors import items_held_by, own_subject_ids
from judgments.models import ANSWERS_BY_STAGE
from judgments.services import human_judgments_record, item_feedback_record, study_ensure_open
from personalization.models import Stage, Study
from personalization.selectors import stage_config

__all__ = [
    "assignment_heartbeat",
    "assignment_next",
    "assignment_save_draft",
    "assignment_skip",
    "assignment_submit",
    "assignments_reclaim_expired",
    "items_build",
    "study_design_pairs",
]

MAX_DRAFT_BYTES = 64 * 1024
MAX_ACTIVE_MS = 2**31 - 1
MAX_TEXT_CHARS = 10_000
# A claim that loses a race (another annotator took the slot, or this annotator's other tab
# inserted the same assignment) simply tries the next item; a few rounds always settle.
CLAIM_ATTEMPTS = 5
# "next" reclaims at most this many lapsed leases of its stage, so a burst of expiries never
# makes one annotator's request slow; the periodic sweep takes care of the rest.
LAZY_RECLAIM_LIMIT = 50


def stage_validate(*, stage: object) -> int:
    """The stage as an int, or a ValidationError naming the bad value."""
    try:
        value = int(stage)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ValidationError(f"stage: {stage!r} is not a stage (1, 2 or 3).") from None
    if value not in Stage.values:
        raise ValidationError(f"stage: {stage!r} is not a stage (1, 2 or 3).")
    return value


def lease_seconds_for(*, study: Study, stage: int) -> int:
    return stage_config(study_id=study.pk, stage=stage).lease_seconds


def guidelines_version_for(*, study: Study, stage: int) -> int | None:
    return stage_config(study_id=study.pk, stage=stage).guideline_version


def personalized_side_for(*, item_seed: int, annotator_id: int) -> str:
    """The side ("A" left, "B" right) of the personalized response for one annotator of a stage-3 item.

    Derived from the item seed and the annotator, so it is random across assignments but the
    same every time this annotator reopens the item.
    """
    digest = hashlib.sha256(f"{item_seed}:{annotator_id}".encode()).digest()
    return "A" if digest[0] & 1 else "B"


def _new_assignment(
    *, study: Study, item: Item, annotator: User, lease_until: datetime, first_person: bool
) -> Assignment:
    side = personalized_side_for(item_seed=item.seed, annotator_id=annotator.pk) if item.stage == 3 else ""
    item.study = study
    return Assignment.objects.create(
        item=item,
        study=study,
        stage=item.stage,
        annotator=annotator,
        first_person=first_person,
        lease_expires_at=lease_until,
        personalized_side=side,
    )


def assignment_next(*, study: Study, stage: int, annotator: User) -> Assignment | None:
    """The annotator's work for this study and stage, or None when nothing is left for them.

    Order: (1) their live lease, if any (renewed when it lapsed but nobody reclaimed it);
    (2) stage 1 only, first-person routing: an item about a subject linked to this user
    account is offered to that user before anything else. It is recorded with
    `first_person=True`, holds none of the k third-party slots and does not count towards
    `done_count`; the user is never given their own subject as a third party;
    (3) a new third-party slot on the open item closest to completion (most judgments done,
    then oldest) that they have never held or skipped; (4) an item whose lease they let
    expire, if it still has a free slot.
    Expired leases of the stage are reclaimed on the way. Raises ValidationError when the
    study is not open. Issues a constant number of queries whatever the study size.
    """
    stage = stage_validate(stage=stage)
    study_ensure_open(study=study)
    now = timezone.now()
    current = (
        Assignment.objects.select_related("item")
        .filter(annotator_id=annotator.pk, study=study, stage=stage, status=Assignment.Status.LEASED)
        .order_by("created_at", "id")
        .first()
    )
    if current is not None:
        current.study = study
        current.annotator = annotator
        if current.lease_expires_at > now:
            return current
    lease_until = now + timedelta(seconds=lease_seconds_for(study=study, stage=stage))
    if current is not None:
        # Lapsed but not yet reclaimed, so it still holds its slot: renew it, unless the sweeper
        # expires it at this very moment (the status condition makes that race harmless).
        if Assignment.objects.filter(pk=current.pk, status=Assignment.Status.LEASED).update(
            lease_expires_at=lease_until, updated_at=now
        ):
            current.lease_expires_at = lease_until
            return current

    reclaimed = _reclaim_lazily(study=study, stage=stage, now=now)
    for _attempt in range(CLAIM_ATTEMPTS):
        try:
            assignment = _claim(study=study, stage=stage, annotator=annotator, lease_until=lease_until)
        except IntegrityError:
            # This annotator's other tab inserted the same (item, annotator) first; try again.
            continue
        if assignment is None and not reclaimed:
            # Nothing free, but lapsed leases may still hold slots: reclaim now rather than tell
            # the annotator there is no work left.
            reclaimed = True
            if assignments_reclaim_expired(study=study, stage=stage, now=now, limit=LAZY_RECLAIM_LIMIT):
                continue
        if assignment is not False:
            return assignment
    return None


def _reclaim_lazily(*, study: Study, stage: int, now: datetime) -> bool:
    """Reclaims the stage's lapsed leases, at most once per ATTUNE_LAZY_RECLAIM_SECONDS per study
    stage (shared by all processes through the cache); returns whether it ran.

    Sweeping on every request would cost three statements on each "next" for something that is
    rarely there; the claim path sweeps anyway when it finds nothing free.
    """
    interval = int(getattr(settings, "ATTUNE_LAZY_RECLAIM_SECONDS", 5))
    if interval > 0 and not cache.add(f"attune:reclaim:{study.pk}:{stage}", 1, interval):
        return False
    assignments_reclaim_expired(study=study, stage=stage, now=now, limit=LAZY_RECLAIM_LIMIT)
    return True


def _claim(*, study: Study, stage: int, annotator: User, lease_until: datetime) -> Assignment | Literal[False] | None:
    """One claiming round: an Assignment, None when there is no work, False when a race was lost."""
    if stage == Stage.CORRECTNESS:
        own = (
            Item.objects.filter(
                study=study,
                stage=stage,
                subject_id__in=own_subject_ids(study=study, annotator=annotator),
                withdrawn=False,
            )
            .exclude(pk__in=items_held_by(study=study, stage=stage, annotator=annotator))
            .order_by("id")
            .first()
        )
        if own is not None:
            # First-person work takes no slot; the unique (item, annotator) constraint alone keeps
            # it to one assignment. The row lock only orders this claim with a researcher
            # withdrawing the item at the same moment (annotate.design locks it too).
            with transaction.atomic():
                # of=self and no ordering: the model's default ordering would join (and lock) the study row.
                locked = Item.objects.select_for_update(of=("self",)).filter(pk=own.pk, withdrawn=False).order_by()
                if not locked.values_list("pk", flat=True).first():
                    return False
                return _new_assignment(
                    study=study, item=own, annotator=annotator, lease_until=lease_until, first_person=True
                )

    with transaction.atomic():
        candidates = Item.objects.filter(study=study, stage=stage, slots_taken__lt=F("k"), withdrawn=False).exclude(
            pk__in=items_held_by(study=study, stage=stage, annotator=annotator)
        )
        if stage == Stage.CORRECTNESS:
            candidates = candidates.exclude(subject_id__in=own_subject_ids(study=study, annotator=annotator))
        # Row lock on one open item for the length of this short transaction. SKIP LOCKED makes
        # concurrent annotators take different items instead of queueing behind the same row.
        item = candidates.select_for_update(skip_locked=True, of=("self",)).order_by("-done_count", "id").first()
        if item is not None:
            # Conditional UPDATE: even without the row lock (SQLite) a full item cannot be claimed.
            if not Item.objects.filter(pk=item.pk, slots_taken__lt=F("k")).update(slots_taken=F("slots_taken") + 1):
                return False
            item.slots_taken += 1
            return _new_assignment(
                study=study, item=item, annotator=annotator, lease_until=lease_until, first_person=False
            )

    with transaction.atomic():
        # Row lock on the annotator's own lapsed assignment while its slot is claimed back.
        lapsed = (
            Assignment.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("item")
            .filter(annotator_id=annotator.pk, study=study, stage=stage, status=Assignment.Status.EXPIRED)
            .filter(item__slots_taken__lt=F("item__k"))
            .order_by("-item__done_count", "item_id")
            .first()
        )
        if lapsed is None:
            return None
        if not lapsed.first_person and not _slot_claim(item_id=lapsed.item_id):
            return False
        lapsed.annotator = annotator
        lapsed.status = Assignment.Status.LEASED
        lapsed.lease_expires_at = lease_until
        lapsed.save(update_fields=["status", "lease_expires_at", "updated_at"])
        return lapsed


def _slot_claim(*, item_id: int) -> bool:
    # Conditional UPDATE: takes a slot only if one is free, atomically in the database.
    return bool(Item.objects.filter(pk=item_id, slots_taken__lt=F("k")).update(slots_taken=F("slots_taken") + 1))


def _slot_release(*, item_id: int, count: int = 1) -> None:
    Item.objects.filter(pk=item_id).update(slots_taken=F("slots_taken") - count)


def assignments_reclaim_expired(
    *, study: Study | None = None, stage: int | None = None, now: datetime | None = None, limit: int = 500
) -> int:
    """Marks lapsed leases expired and gives their slots back; returns how many were reclaimed.

    Called lazily by assignment_next for its stage, and callable for the whole site from a
    periodic job (a management command or cron; no Celery beat needed). Safe to run
    concurrently: leases locked by someone else (being submitted, renewed or reclaimed) are
    skipped and picked up next time. Reclaims at most `limit` leases per call.
    """
    now = now or timezone.now()
    leases = Assignment.objects.filter(status=Assignment.Status.LEASED, lease_expires_at__lte=now)
    if study is not None:
        leases = leases.filter(study=study)
    if stage is not None:
        leases = leases.filter(stage=stage)
    with transaction.atomic():
        # Row locks on the lapsed assignments; SKIP LOCKED leaves alone any that another
        # transaction (a submit, a heartbeat, another sweeper) is handling right now.
        rows = list(
            leases.select_for_update(skip_locked=True)
            .order_by("lease_expires_at", "id")
            .values_list("id", "item_id", "first_person")[:limit]
        )
        if not rows:
            return 0
        Assignment.objects.filter(pk__in=[row[0] for row in rows]).update(
            status=Assignment.Status.EXPIRED, updated_at=now
        )
        released = Counter(item_id for _, item_id, first_person in rows if not first_person)
        if released:
            # Row locks on the items, taken in id order, so two sweepers whose leases share
            # items can never wait on each other in a cycle.
            list(Item.objects.select_for_update().filter(pk__in=released).order_by("pk").values_list("pk"))
            # One UPDATE per distinct count (at most k of them), not one per item: the number
            # of queries stays constant however many leases lapsed together.
            by_count: dict[int, list[int]] = {}
            for item_id, count in released.items():
                by_count.setdefault(count, []).append(item_id)
            for count, item_ids in by_count.items():
                Item.objects.filter(pk__in=item_ids).update(slots_taken=F("slots_taken") - count)
    return len(rows)


def _lock(assignment: Assignment) -> Assignment:
    # Row lock on the assignment: submits, skips, heartbeats and the sweeper of the same
    # assignment run one after the other, so each state transition happens exactly once.
    locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
    locked.item = assignment.item
    locked.study = assignment.study
    return locked


def _sync(target: Assignment, source: Assignment) -> Assignment:
    """Copies the saved state into the caller's object, so it does not go stale."""
    for field in ("status", "lease_expires_at", "draft", "active_ms", "skip_reason", "submitted_at", "updated_at"):
        setattr(target, field, getattr(source, field))
    return target


def assignment_heartbeat(*, assignment: Assignment) -> Assignment:
    """Extends the lease while the annotator's page is open.

    A lease that already expired is taken back if its item still has a free slot (the
    annotator just came back); otherwise ValidationError. Heartbeats on a submitted
    assignment (an open edit page) change nothing. Locks the assignment row.
    """
    now = timezone.now()
    lease_until = now + timedelta(seconds=lease_seconds_for(study=assignment.study, stage=assignment.stage))
    with transaction.atomic():
        locked = _lock(assignment)
        if locked.status == Assignment.Status.SKIPPED:
            raise ValidationError("This item was skipped: ask for the next item.")
        if locked.status == Assignment.Status.EXPIRED:
            if not locked.first_person and not _slot_claim(item_id=locked.item_id):
                raise ValidationError(
                    "Your lease on this item expired and other annotators have taken its places: ask for the next item."
                )
            locked.status = Assignment.Status.LEASED
        if locked.status == Assignment.Status.LEASED:
            locked.lease_expires_at = lease_until
            locked.save(update_fields=["status", "lease_expires_at", "updated_at"])
    return _sync(assignment, locked)


def assignment_save_draft(*, assignment: Assignment, draft: dict) -> None:
    """Stores the annotator's unsaved form state (autosave). One UPDATE; no lock needed, since
    the last draft simply wins. Only live or submitted (being edited) assignments keep drafts."""
    if not isinstance(draft, dict):
        raise ValidationError(f"draft: expected a JSON object, got {type(draft).__name__}.")
    size = len(json.dumps(draft, ensure_ascii=False).encode("utf-8"))
    if size > MAX_DRAFT_BYTES:
        raise ValidationError(f"draft: {size} bytes is more than the {MAX_DRAFT_BYTES} allowed.")
    updated = Assignment.objects.filter(
        pk=assignment.pk, status__in=[Assignment.Status.LEASED, Assignment.Status.SUBMITTED]
    ).update(draft=draft, updated_at=timezone.now())
    if not updated:
        raise ValidationError("draft: this assignment was skipped or has expired; ask for the next item.")
    assignment.draft = draft


def _answers_validate(
    *, stage: int, shown: set[int], answers: Mapping, attribute_notes: Mapping | None
) -> tuple[dict[int, str], dict[int, str]]:
    """Normalizes answer and note keys to attribute ids and checks them against the shown attributes."""

    def ids(mapping: Mapping, field: str) -> dict[int, str]:
        result: dict[int, str] = {}
        for key, value in mapping.items():
            try:
                attribute_id = int(key)
            except (TypeError, ValueError):
                raise ValidationError(f"{field}: {key!r} is not an attribute id.") from None
            if not isinstance(value, str):
                raise ValidationError(f"{field}[{attribute_id}]: expected a string, got {type(value).__name__}.")
            result[attribute_id] = value
        return result

    if not isinstance(answers, Mapping):
        raise ValidationError("answers: expected an object mapping attribute ids to answers.")
    normalized = ids(answers, "answers")
    notes = ids(attribute_notes or {}, "attribute_notes")
    unknown = sorted((set(normalized) | set(notes)) - shown)
    if unknown:
        raise ValidationError(f"answers: attribute(s) {', '.join(map(str, unknown))} are not shown on this item.")
    missing = sorted(shown - set(normalized))
    if missing:
        raise ValidationError(f"answers: attribute(s) {', '.join(map(str, missing))} have no answer.")
    allowed = ANSWERS_BY_STAGE[stage]
    for attribute_id, answer in normalized.items():
        if answer not in allowed:
            raise ValidationError(
                f"answers[{attribute_id}]: {answer!r} is not a stage {stage} answer; "
                f"expected one of {', '.join(allowed)}."
            )
    for attribute_id, note in notes.items():
        if len(note) > MAX_TEXT_CHARS:
            raise ValidationError(f"attribute_notes[{attribute_id}]: longer than {MAX_TEXT_CHARS} characters.")
    return normalized, notes


def s3_to_stored(*, answer: str, personalized_side: str) -> str:
    """A stage-3 answer as shown (B vs A, 5 = B much better) in stored terms (personalized vs generic)."""
    return answer if personalized_side == "B" else str(6 - int(answer))


def assignment_submit(
    *,
    assignment: Assignment,
    answers: dict[int, str],
    attribute_notes: dict[int, str] | None = None,
    note: str = "",
    missing_attributes: str = "",
    flag: bool = False,
    active_ms: int = 0,
) -> None:
    """Stores the annotator's judgments of the item: one Judgment per shown attribute.

    Every shown attribute must be answered. Stage 3 answers come in shown terms (5 = right-hand
    response B much better) and are stored in personalized-vs-generic terms. `active_ms` is the
    total active time on the item as the page measured it (kept as the maximum reported, so a
    repeated submit does not add it twice). Submitting again (a double click or an edit) while
    the study is open updates the same judgments and keeps revisions; it never counts the item
    twice. A lapsed lease is accepted while the item still has a free slot. Locks the
    assignment row, then updates the item's counter.
    """
    stage = assignment.stage
    item = assignment.item
    if note and len(note) > MAX_TEXT_CHARS:
        raise ValidationError(f"note: longer than {MAX_TEXT_CHARS} characters.")
    if missing_attributes and len(missing_attributes) > MAX_TEXT_CHARS:
        raise ValidationError(f"missing_attributes: longer than {MAX_TEXT_CHARS} characters.")
    if isinstance(active_ms, bool) or not isinstance(active_ms, int) or not 0 <= active_ms <= MAX_ACTIVE_MS:
        raise ValidationError(f"active_ms: {active_ms!r} is not a number of milliseconds.")
    shown = set(item.attributes.values_list("id", flat=True))
    normalized, notes = _answers_validate(stage=stage, shown=shown, answers=answers, attribute_notes=attribute_notes)
    if stage == Stage.PREFERENCE:
        normalized = {
            a: s3_to_stored(answer=v, personalized_side=assignment.personalized_side) for a, v in normalized.items()
        }
    version = guidelines_version_for(study=assignment.study, stage=stage)
    now = timezone.now()

    with transaction.atomic():
        locked = _lock(assignment)
        study_ensure_open(study=assignment.study)
        if locked.status == Assignment.Status.SKIPPED:
            raise ValidationError("This item was skipped; it cannot be submitted.")
        first_submit = locked.status != Assignment.Status.SUBMITTED
        if locked.status == Assignment.Status.EXPIRED and not locked.first_person:
            if not _slot_claim(item_id=item.pk):
                raise ValidationError(
                    "Your lease on this item expired and other annotators have taken its places; "
                    "your answers were not stored."
                )
        locked.active_ms = max(locked.active_ms, active_ms)
        # What the judgments and the item feedback share: who, which item, when and how long.
        common: dict[str, Any] = {
            "study": assignment.study,
            "stage": stage,
            "annotator": assignment.annotator,
            "flag": flag,
            "time_spent_ms": locked.active_ms,
            "guidelines_version": version,
            "subject_id": item.subject_id,
            "prompt_id": item.prompt_id,
            "pair_id": item.pair_id,
            "first": first_submit,
        }
        human_judgments_record(
            **common,
            answers=normalized,
            attribute_notes=notes,
            personalized_side=locked.personalized_side,
            generic_response_id=item.generic_response_id,
            personalized_response_id=item.personalized_response_id,
        )
        item_feedback_record(**common, note=note, missing_attributes=missing_attributes)
        if first_submit:
            locked.status = Assignment.Status.SUBMITTED
            locked.submitted_at = now
            if not locked.first_person:
                Item.objects.filter(pk=item.pk).update(done_count=F("done_count") + 1)
        locked.draft = {}
        locked.save(update_fields=["status", "submitted_at", "active_ms", "draft", "updated_at"])
    _sync(assignment, locked)


def assignment_skip(*, assignment: Assignment, reason: str = "") -> None:
    """Gives the item back without counting it; the annotator is never offered it again.

    Idempotent (skipping twice changes nothing). A submitted item cannot be skipped: change its
    answers instead. Locks the assignment row, then frees the item's slot.
    """
    if len(reason) > MAX_TEXT_CHARS:
        raise ValidationError(f"reason: longer than {MAX_TEXT_CHARS} characters.")
    with transaction.atomic():
        locked = _lock(assignment)
        if locked.status == Assignment.Status.SUBMITTED:
            raise ValidationError("This item was already submitted: change your answers instead of skipping it.")
        if locked.status == Assignment.Status.SKIPPED:
            return
        if locked.status == Assignment.Status.LEASED and not locked.first_person:
            _slot_release(item_id=locked.item_id)
        locked.status = Assignment.Status.SKIPPED
        locked.skip_reason = reason
        locked.lease_expires_at = timezone.now()
        locked.save(update_fields=["status", "skip_reason", "lease_expires_at", "updated_at"])
    _sync(assignment, locked)

"""Writes of human judgments.

The caller (annotate.services) serializes submissions of one assignment with a row lock; the
unique constraints on Judgment and ItemFeedback are the guarantee underneath that lock. Both
functions are idempotent: recording the same answers twice leaves one row per attribute and
records no revision.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone

from judgments.models import ANSWERS_BY_STAGE, ItemFeedback, Judgment, JudgmentRevision
from personalization.models import Stage, Study


def _target(*, stage: int, subject_id: int | None, prompt_id: int | None, pair_id: int | None) -> dict[str, int]:
    """The column a judgment of this stage is about. Ids, not objects: the hot path has only ids
    at hand, and loading the rows just to pass them here cost a query each."""
    by_stage = {1: ("subject", subject_id), 2: ("prompt", prompt_id), 3: ("pair", pair_id)}
    if stage not in by_stage:
        raise ValidationError(f"stage: {stage!r} is not a stage (1, 2 or 3).")
    field, value = by_stage[stage]
    if value is None:
        raise ValidationError(f"{field}: a stage {stage} judgment needs a {field}.")
    return {f"{field}_id": value}


def study_ensure_open(*, study: Study) -> None:
    """Judgments can only be written or changed while the study is open."""
    if study.status != Study.Status.OPEN:
        raise ValidationError(
            f"Study {study.name!r} is {study.get_status_display().lower()}: judgments can no longer be changed."
        )


def human_judgments_record(
    *,
    study: Study,
    stage: int,
    annotator: User,
    answers: Mapping[int, str],
    subject_id: int | None = None,
    prompt_id: int | None = None,
    pair_id: int | None = None,
    attribute_notes: Mapping[int, str] | None = None,
    flag: bool = False,
    time_spent_ms: int = 0,
    guidelines_version: int | None = None,
    personalized_side: str = "",
    generic_response_id: int | None = None,
    personalized_response_id: int | None = None,
    first: bool = False,
) -> list[Judgment]:
    """Creates or updates one Judgment per answered attribute of one item.

    `answers` maps attribute id -> answer, already in stored terms (stage 3: personalized vs
    generic). A changed answer, note or flag keeps the earlier state as a JudgmentRevision.
    `first=True` says the caller knows this annotator has no judgments of this item yet (a first
    submission), which saves reading them; the unique constraints still refuse duplicates.
    Precondition: the caller holds a lock that serializes writes for this annotator and item.
    Queries: a constant number whatever the number of attributes (one read, bulk writes).
    """
    study_ensure_open(study=study)
    target = _target(stage=stage, subject_id=subject_id, prompt_id=prompt_id, pair_id=pair_id)
    allowed = ANSWERS_BY_STAGE[stage]
    for attribute_id, answer in answers.items():
        if answer not in allowed:
            raise ValidationError(
                f"answers[{attribute_id}]: {answer!r} is not a stage {stage} answer; "
                f"expected one of {', '.join(allowed)}."
            )
    notes = dict(attribute_notes or {})
    if stage == Stage.PREFERENCE and personalized_side not in ("A", "B"):
        raise ValidationError("personalized_side: a stage 3 judgment records the side as 'A' or 'B'.")

    now = timezone.now()
    existing = (
        {}
        if first
        else {
            j.attribute_id: j
            for j in Judgment.objects.filter(
                study=study, stage=stage, annotator=annotator, attribute_id__in=list(answers), **target
            )
        }
    )
    common = {
        "flag": flag,
        "time_spent_ms": time_spent_ms,
        "guidelines_version": guidelines_version,
        "personalized_side": personalized_side,
    }
    created: list[Judgment] = []
    changed: list[Judgment] = []
    revisions: list[JudgmentRevision] = []
    for attribute_id, answer in answers.items():
        note = notes.get(attribute_id, "")
        judgment = existing.get(attribute_id)
        if judgment is None:
            created.append(
                Judgment(
                    study=study,
                    stage=stage,
                    annotator=annotator,
                    attribute_id=attribute_id,
                    answer=answer,
                    note=note,
                    generic_response_id=generic_response_id,
                    personalized_response_id=personalized_response_id,
                    **common,
                    **target,
                )
            )
            continue
        if (judgment.answer, judgment.note, judgment.flag) != (answer, note, flag):
            revisions.append(
                JudgmentRevision(judgment=judgment, answer=judgment.answer, note=judgment.note, flag=judgment.flag)
            )
        elif (judgment.time_spent_ms, judgment.guidelines_version) == (time_spent_ms, guidelines_version):
            continue  # the same form again: nothing to write
        judgment.answer = answer
        judgment.note = note
        for field, value in common.items():
            setattr(judgment, field, value)
        judgment.updated_at = now
        changed.append(judgment)
    if created:
        Judgment.objects.bulk_create(created)
    if revisions:
        JudgmentRevision.objects.bulk_create(revisions)
    if changed:
        Judgment.objects.bulk_update(
            changed,
            ["answer", "note", "flag", "time_spent_ms", "guidelines_version", "personalized_side", "updated_at"],
        )
    return [*created, *(existing[a] for a in answers if a in existing)]


def item_feedback_record(
    *,
    study: Study,
    stage: int,
    annotator: User,
    subject_id: int | None = None,
    prompt_id: int | None = None,
    pair_id: int | None = None,
    note: str = "",
    missing_attributes: str = "",
    flag: bool = False,
    time_spent_ms: int = 0,
    guidelines_version: int | None = None,
    first: bool = False,
) -> ItemFeedback:
    """Creates or updates the annotator's feedback on a whole item (one row per annotator and item).

    `first=True` says the caller knows there is no feedback yet (a first submission), which saves
    the UPDATE that would find nothing; the unique constraint still refuses a second row.
    Precondition: as human_judgments_record, the caller serializes writes for this annotator and item.
    """
    study_ensure_open(study=study)
    target = _target(stage=stage, subject_id=subject_id, prompt_id=prompt_id, pair_id=pair_id)
    values = {
        "study": study,
        "note": note,
        "missing_attributes": missing_attributes,
        "flag": flag,
        "time_spent_ms": time_spent_ms,
        "guidelines_version": guidelines_version,
    }
    # An UPDATE, then an INSERT only the first time: the caller's lock makes this safe without
    # update_or_create's row lock and savepoints (and the unique constraint backs it up).
    existing = ItemFeedback.objects.filter(stage=stage, annotator=annotator, **target)
    if not first and existing.update(**values, updated_at=timezone.now()):
        return existing.get()
    feedback = ItemFeedback.objects.create(stage=stage, annotator=annotator, **target, **values)
    return feedback

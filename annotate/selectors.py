"""Reads for the annotation layer."""

from __future__ import annotations

import random
from typing import cast

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from annotate.models import Assignment, Item
from judgments.models import ItemFeedback, Judgment
from personalization.models import Attribute, Prompt, Response, Stage, Study, Subject, SubjectPrompt, Turn
from personalization.selectors import stage_config


def studies_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Study]:
    """Studies the user owns or annotates; nothing for anonymous users."""
    if not user.is_authenticated:
        return Study.objects.none()
    return Study.objects.filter(Q(owners=user) | Q(annotators=user)).distinct().order_by("-created_at")


# mine_available stops counting here, so a progress read costs the same on a 100k-item study.
MINE_AVAILABLE_CAP = 1000


def study_progress(*, study: Study, stage: int, annotator: User | None = None) -> dict:
    """Counts for progress bars: the study's items of a stage and, given an annotator, their own.

    done = k third-party judgments in; in progress = started (a slot held or a judgment in) but
    not done; waiting = nobody has started it; withdrawn items count in none of these but
    `items_withdrawn`. `mine_available` counts the items the annotator
    could still be given (a free slot, never held or skipped by them, or their own first-person
    item), up to MINE_AVAILABLE_CAP; `mine_available_capped` says when there are at least that
    many. Exact; see study_progress_cached for the hot path.
    """
    counts = _study_counts(study=study, stage=stage)
    counts.update(mine_progress(study=study, stage=stage, annotator=annotator))
    return counts


def study_progress_cached(*, study: Study, stage: int, annotator: User | None = None) -> dict:
    """study_progress with the study-wide counts cached for ATTUNE_PROGRESS_CACHE_SECONDS (default 5).

    Those counts scan every item of the stage, so every payload recomputing them would make
    "next" and "submit" slower as a study grows; a progress bar a few seconds old is fine. The
    annotator's own counts stay exact.
    """
    ttl = getattr(settings, "ATTUNE_PROGRESS_CACHE_SECONDS", 5)
    if ttl <= 0:
        return study_progress(study=study, stage=stage, annotator=annotator)
    key = f"attune:progress:v2:{study.pk}:{stage}"  # v2: with items_withdrawn
    counts = cache.get(key)
    if counts is None:
        counts = _study_counts(study=study, stage=stage)
        cache.set(key, counts, ttl)
    return {**counts, **mine_progress(study=study, stage=stage, annotator=annotator)}


ITEM_STATES = {
    "waiting": "Waiting",
    "in_progress": "In progress",
    "done": "Done",
    "withdrawn": "Withdrawn",
}
# Each item is in exactly one state; item_state says the same of one loaded item.
ITEM_STATE_FILTERS = {
    "waiting": Q(withdrawn=False, slots_taken=0, done_count__lt=F("k")),
    "in_progress": Q(withdrawn=False, slots_taken__gt=0, done_count__lt=F("k")),
    "done": Q(withdrawn=False, done_count__gte=F("k")),
    "withdrawn": Q(withdrawn=True),
}


def item_state(item: Item) -> str:
    if item.withdrawn:
        return "withdrawn"
    if item.done_count >= item.k:
        return "done"
    return "in_progress" if item.slots_taken else "waiting"


def _study_counts(*, study: Study, stage: int) -> dict:
    return Item.objects.filter(study=study, stage=stage).aggregate(
        items_total=Count("id", filter=Q(withdrawn=False)),
        **{f"items_{state}": Count("id", filter=condition) for state, condition in ITEM_STATE_FILTERS.items()},
    )


def items_held_by(*, study: Study, stage: int, annotator: User) -> QuerySet:
    """Ids of the items of a stage this annotator ever held (any status), as a subquery.

    Used as `NOT IN (...)`, which PostgreSQL runs as one hash of the annotator's items probed
    per candidate. The equivalent NOT EXISTS became a nested loop over all of the annotator's
    assignments for every candidate whenever the planner's statistics lagged behind a new
    annotator: 20 ms instead of 2 after a few hundred items.
    """
    return Assignment.objects.filter(annotator_id=annotator.pk, study=study, stage=stage).values("item_id")


def own_subject_ids(*, study: Study, annotator: User) -> QuerySet:
    """The study's subjects linked to this annotator's account, as a subquery.

    A subquery rather than a join to subjects: a join made PostgreSQL scan every subject of
    every study (30 ms with 100k subjects) to find the few, if any, linked to one user.
    """
    return Subject.objects.filter(study=study, user_id=annotator.pk).values("id")


def mine_progress(*, study: Study, stage: int, annotator: User | None) -> dict:
    """The annotator's own progress in a stage (see study_progress): exact, one query whatever the study size."""
    if annotator is None:
        return {"mine_done": 0, "mine_available": 0, "mine_available_capped": False}
    done = (
        Assignment.objects.filter(
            study=study, stage=stage, annotator_id=annotator.pk, status=Assignment.Status.SUBMITTED
        )
        .order_by()  # the model's default ordering would make PostgreSQL sort rows it only counts
        .values("id")
    )
    open_to_me = Q(slots_taken__lt=F("k"))
    if stage == Stage.CORRECTNESS:
        # Third parties never get their own subject; they get it first-person instead.
        own = own_subject_ids(study=study, annotator=annotator)
        open_to_me = (open_to_me & ~Q(subject_id__in=own)) | Q(subject_id__in=own)
    available = (
        Item.objects.filter(open_to_me, study=study, stage=stage, withdrawn=False)
        .exclude(pk__in=items_held_by(study=study, stage=stage, annotator=annotator))
        .order_by()
        .values("id")[:MINE_AVAILABLE_CAP]
    )
    # Both counts in one statement: this runs on every "next" and submit.
    done_sql, done_params = done.query.sql_with_params()
    available_sql, available_params = available.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM ({done_sql}) AS done), "  # noqa: S608 - SQL compiled by the ORM
            f"(SELECT COUNT(*) FROM ({available_sql}) AS available)",
            (*done_params, *available_params),
        )
        mine_done, mine_available = cursor.fetchone()
    return {
        "mine_done": mine_done,
        "mine_available": mine_available,
        "mine_available_capped": mine_available >= MINE_AVAILABLE_CAP,
    }


def judgments_of_annotator(*, study: Study, annotator: User) -> QuerySet[Assignment]:
    """The annotator's submitted assignments in a study, newest first (their items, for editing)."""
    return (
        Assignment.objects.filter(study=study, annotator_id=annotator.pk, status=Assignment.Status.SUBMITTED)
        .select_related("item", "item__subject", "item__prompt", "item__pair__prompt")
        .order_by("-submitted_at", "-id")
    )


def _existing(assignment: Assignment) -> tuple[dict[int, str], dict[int, str], dict]:
    """The annotator's stored answers and notes for this item, and their item feedback.

    Stage 3 answers are stored as personalized vs generic and returned as shown (B vs A);
    the 1-5 scale is symmetric, so the same mapping converts both ways.
    """
    item = assignment.item
    target = {1: {"subject_id": item.subject_id}, 2: {"prompt_id": item.prompt_id}, 3: {"pair_id": item.pair_id}}
    rows = Judgment.objects.filter(
        study_id=assignment.study_id,
        stage=assignment.stage,
        annotator_id=assignment.annotator_id,
        **target[assignment.stage],
    ).values_list("attribute_id", "answer", "note")
    answers: dict[int, str] = {}
    notes: dict[int, str] = {}
    for attribute_id, answer, note in rows:
        if assignment.stage == Stage.PREFERENCE:
            answer = answer if assignment.personalized_side == "B" else str(6 - int(answer))
        answers[attribute_id] = answer
        if note:
            notes[attribute_id] = note
    feedback = (
        ItemFeedback.objects.filter(
            stage=assignment.stage, annotator_id=assignment.annotator_id, **target[assignment.stage]
        )
        .order_by("pk")
        .values("note", "missing_attributes", "flag")
        .first()
    )
    return answers, notes, dict(feedback or {})


def assignment_payload(*, assignment: Assignment) -> dict:
    """Everything a screen needs to show an assignment, as JSON-able data.

    Model and conversation text is returned raw: it is untrusted, and the screens escape it.
    Stage 2 hides which subject each attribute belongs to and shuffles them with the item
    seed; stage 3 shows the responses as A and B without saying which is personalized.
    A constant number of queries per stage, and no scan of the stage's items, whatever the study size.
    """
    item = assignment.item
    study = assignment.study
    stage = assignment.stage
    config = stage_config(study_id=study.pk, stage=stage)
    payload: dict = {
        "assignment_id": assignment.pk,
        "item_id": item.pk,
        "stage": stage,
        "status": assignment.status,
        "first_person": assignment.first_person,
        "study": {"id": study.pk, "name": study.name},
        "guidelines": (
            {"version": config.guideline_version, "text": config.guideline_text}
            if config.guideline_version is not None
            else None
        ),
        "draft": assignment.draft,
        "active_ms": assignment.active_ms,
        "lease_expires_at": assignment.lease_expires_at.isoformat(),
        "submitted_at": assignment.submitted_at.isoformat() if assignment.submitted_at else None,
        "existing": {},
        "attribute_notes": {},
        "feedback": {},
        # Only the annotator's own counts: the study-wide ones scan every item of the stage, so the
        # screen fetches them separately (api-stage-progress) and never waits for them.
        "progress": mine_progress(study=study, stage=stage, annotator=assignment.annotator),
    }
    if assignment.status == Assignment.Status.SUBMITTED:
        payload["existing"], payload["attribute_notes"], payload["feedback"] = _existing(assignment)

    if stage == Stage.CORRECTNESS:
        # Plain rows (values), not model instances: this runs on every "next" and submit, and
        # building instances and prefetch caches cost more than the queries themselves.
        turns = (
            Turn.objects.filter(conversation__subject_id=cast(int, item.subject_id))
            .order_by("conversation__timestamp", "conversation_id", "index")
            .values("id", "index", "role", "content", "conversation_id")
            .annotate(model=F("conversation__model"), timestamp=F("conversation__timestamp"))
        )
        conversations: dict[int, dict] = {}
        for turn in turns:
            conversation = conversations.get(turn["conversation_id"])
            if conversation is None:
                timestamp = turn["timestamp"]
                conversation = conversations[turn["conversation_id"]] = {
                    "id": turn["conversation_id"],
                    "model": turn["model"],
                    "timestamp": timestamp.isoformat() if timestamp else None,
                    "turns": [],
                }
            conversation["turns"].append(
                {"id": turn["id"], "index": turn["index"], "role": turn["role"], "content": turn["content"]}
            )
        attributes = list(item.attributes.order_by("id").values("id", "text", "reason", "confidence"))
        evidence: dict[int, list[int]] = {a["id"]: [] for a in attributes}
        for attribute_id, turn_id in (
            Attribute.evidence_turns.through.objects.filter(attribute_id__in=list(evidence))
            .order_by("turn__conversation_id", "turn__index")
            .values_list("attribute_id", "turn_id")
        ):
            evidence[attribute_id].append(turn_id)
        payload["conversations"] = list(conversations.values())
        payload["attributes"] = [{**a, "evidence_turn_ids": evidence[a["id"]]} for a in attributes]
    elif stage == Stage.RELEVANCE:
        prompt = cast(Prompt, item.prompt)  # set on every stage-2 item (a check constraint)
        shown = [{"id": a.pk, "text": a.text} for a in Attribute.objects.filter(items=item).order_by("id")]
        random.Random(item.seed).shuffle(shown)  # noqa: S311 - a fixed display order, not a secret
        payload["prompt"] = {"id": prompt.pk, "text": prompt.text}
        payload["attributes"] = shown
    else:
        # Stage-3 items always have a pair and both responses (a check constraint).
        pair = cast(SubjectPrompt, item.pair)
        prompt = pair.prompt
        personalized = cast(Response, item.personalized_response)
        generic = cast(Response, item.generic_response)
        sides = {"A": generic.text, "B": personalized.text}
        if assignment.personalized_side == "A":
            sides = {"A": personalized.text, "B": generic.text}
        payload["prompt"] = {"id": prompt.pk, "text": prompt.text}
        payload["responses"] = sides
        payload["attributes"] = [{"id": a.pk, "text": a.text} for a in item.attributes.order_by("id")]
    return payload


def items_of_stage(*, study: Study, stage: int, state: str | None = None) -> QuerySet[Item]:
    """A stage's items for the researcher's item list, in build order, optionally in one state
    (a key of ITEM_STATES). Each carries `attribute_count` and `touched` (ever assigned)."""
    items = Item.objects.filter(study=study, stage=stage)
    if state is not None:
        items = items.filter(ITEM_STATE_FILTERS[state])
    return (
        items.select_related("subject", "prompt", "pair__subject", "pair__prompt", "personalized_response")
        .annotate(
            attribute_count=Count("attributes"),
            touched=Exists(Assignment.objects.filter(item_id=OuterRef("pk"))),
        )
        .order_by("id")
    )


def item_attribute_choices(*, item: Item) -> QuerySet[Attribute]:
    """The attributes an item may ask about: the merged attributes of its subject (stage 1), of
    every subject paired with its prompt (stage 2), or of its pair's subject (stage 3)."""
    merged = Attribute.objects.filter(level=Attribute.Level.MERGED, subject__study_id=item.study_id)
    if item.stage == Stage.CORRECTNESS:
        return merged.filter(subject_id=cast(int, item.subject_id)).order_by("id")
    if item.stage == Stage.RELEVANCE:
        paired = SubjectPrompt.objects.filter(prompt_id=cast(int, item.prompt_id)).values("subject_id")
        return merged.filter(subject_id__in=paired).order_by("subject_id", "id")
    pair_subject = SubjectPrompt.objects.filter(pk=cast(int, item.pair_id)).values("subject_id")
    return merged.filter(subject_id__in=pair_subject).order_by("id")


def item_overview(*, item: Item) -> dict:
    """What the researcher's item page shows: the target, the attributes it may ask about (and
    which it does), the responses it may compare (stage 3) and who has it."""
    chosen = set(item.attributes.values_list("id", flat=True))
    choices = [
        {
            "id": a.pk,
            "text": a.text,
            "reason": a.reason,
            "subject": a.subject.external_id,
            "chosen": a.pk in chosen,
        }
        for a in item_attribute_choices(item=item).select_related("subject")
    ]
    overview: dict = {
        "state": (state := item_state(item)),
        "state_label": ITEM_STATES[state],
        "attributes": choices,
        "assignments": list(
            Assignment.objects.filter(item=item).select_related("annotator").order_by("created_at", "id")
        ),
        "subject": item.subject,
        "prompt": item.prompt,
        "pair": None,
        "responses": [],
    }
    if item.stage == Stage.PREFERENCE:
        pair = SubjectPrompt.objects.select_related("subject", "prompt").get(pk=cast(int, item.pair_id))
        overview["pair"] = pair
        overview["prompt"] = pair.prompt
        responses = Response.objects.filter(pair=pair).prefetch_related("conditioned_on").order_by("mode", "-id")
        overview["responses"] = [
            {
                "id": r.pk,
                "mode": r.mode,
                "mode_label": r.get_mode_display(),
                "text": r.text,
                "model_run_id": r.model_run_id,
                "conditioned_on": [a.text for a in r.conditioned_on.all()],
                "is_generic": r.mode == Response.Mode.GENERIC,
                "chosen": r.pk in (item.generic_response_id, item.personalized_response_id),
            }
            for r in responses
        ]
        overview["responses"].sort(key=lambda r: not r["is_generic"])  # the generic one first, then the rest
    return overview

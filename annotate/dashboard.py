"""Read-only selectors behind the researcher dashboard: progress per stage, work per annotator,
flags raised, and how much the human annotators agree with each other.

Agreement is computed over "units": one attribute judged within one item (stage 1: subject,
stage 2: prompt, stage 3: subject-prompt pair). Only human judgments count; model raters are
compared with humans elsewhere (judgments' analysis), not here.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, Sum
from django.urls import NoReverseMatch, reverse

from annotate.models import Assignment, Item
from annotate.selectors import study_progress
from judgments.models import ANSWERS_BY_STAGE, ITEM_FIELD_BY_STAGE, ItemFeedback, Judgment
from personalization.models import (
    Attribute,
    Conversation,
    Prompt,
    Response,
    Stage,
    Study,
    StudyStage,
    Subject,
    SubjectPrompt,
)

# Flags are few in a healthy study; past this many the dashboard links to the admin list instead.
FLAG_LIST_LIMIT = 200
# A pair of annotators needs this many shared units before their Cohen's kappa means anything.
COHEN_MIN_SHARED_UNITS = 2


@dataclass(frozen=True)
class Agreement:
    """Human-human agreement of one stage. Kappas are None when undefined (too little data, or
    every rater gave the same single answer so chance agreement is already perfect)."""

    units: int
    judgments: int
    percent_agreement: float | None
    fleiss_kappa: float | None
    mean_cohen_kappa: float | None
    cohen_pairs: int
    answer_counts: dict[str, int] = field(default_factory=dict)


def fleiss_kappa(units: Iterable[Counter[str]]) -> float | None:
    """Fleiss' kappa over units rated by two or more raters each.

    Uses the common generalization to a varying number of raters per unit (each unit's observed
    agreement is computed with its own n), which reduces to the textbook formula when every unit
    has the same number of raters.
    """
    per_unit: list[float] = []
    totals: Counter[str] = Counter()
    for counts in units:
        n = sum(counts.values())
        if n < 2:
            continue
        per_unit.append(sum(c * (c - 1) for c in counts.values()) / (n * (n - 1)))
        totals.update(counts)
    if not per_unit:
        return None
    grand = sum(totals.values())
    expected = sum((c / grand) ** 2 for c in totals.values())
    if expected >= 1.0:
        return None
    observed = sum(per_unit) / len(per_unit)
    return (observed - expected) / (1.0 - expected)


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters from their answers on the units both rated."""
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(1 for a, b in pairs if a == b) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum((first[c] / n) * (second[c] / n) for c in set(first) | set(second))
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def percent_agreement(units: Iterable[Counter[str]]) -> float | None:
    """Share of rater pairs, over all units, that gave the same answer."""
    agreeing = 0
    pairs = 0
    for counts in units:
        n = sum(counts.values())
        agreeing += sum(c * (c - 1) // 2 for c in counts.values())
        pairs += n * (n - 1) // 2
    return agreeing / pairs if pairs else None


def stage_agreement(*, study: Study, stage: int) -> Agreement:
    """Agreement among the human annotators of one stage (one query, read in one pass; memory
    grows with the number of judged attribute-item units)."""
    item_field = f"{ITEM_FIELD_BY_STAGE[stage]}_id"
    rows = (
        Judgment.objects.filter(study=study, stage=stage, annotator__isnull=False)
        .values_list(item_field, "attribute_id", "annotator_id", "answer")
        .order_by()
    )
    by_unit: dict[tuple[int, int], dict[int, str]] = defaultdict(dict)
    answers: Counter[str] = Counter()
    judgments = 0
    # Streamed: a large study has many judgments and only the per-unit answers are kept.
    for item_id, attribute_id, annotator_id, answer in rows.iterator(chunk_size=5000):
        by_unit[(item_id, attribute_id)][annotator_id] = answer
        answers[answer] += 1
        judgments += 1
    shared = [raters for raters in by_unit.values() if len(raters) >= 2]
    unit_counts = [Counter(raters.values()) for raters in shared]

    by_pair: dict[tuple[int, int], list[tuple[str, str]]] = defaultdict(list)
    for raters in shared:
        for (a, answer_a), (b, answer_b) in itertools.combinations(sorted(raters.items()), 2):
            by_pair[(a, b)].append((answer_a, answer_b))
    kappas = [
        kappa
        for pairs in by_pair.values()
        if len(pairs) >= COHEN_MIN_SHARED_UNITS and (kappa := cohen_kappa(pairs)) is not None
    ]
    return Agreement(
        units=len(shared),
        judgments=judgments,
        percent_agreement=percent_agreement(unit_counts),
        fleiss_kappa=fleiss_kappa(unit_counts),
        mean_cohen_kappa=sum(kappas) / len(kappas) if kappas else None,
        cohen_pairs=len(kappas),
        answer_counts={answer: answers.get(answer, 0) for answer in ANSWERS_BY_STAGE[stage]},
    )


def dashboard_stages(*, study: Study) -> list[dict]:
    """Per stage: settings, item progress and agreement."""
    settings_by_stage = {row.stage: row for row in StudyStage.objects.filter(study=study)}
    stages = []
    for stage in Stage:
        progress = study_progress(study=study, stage=stage.value)
        total = progress["items_total"]
        stages.append(
            {
                "number": stage.value,
                "label": stage.label,
                "settings": settings_by_stage.get(stage.value),
                "progress": progress,
                "percent_done": round(100 * progress["items_done"] / total) if total else 0,
                "agreement": stage_agreement(study=study, stage=stage.value),
            }
        )
    return stages


def dashboard_annotators(*, study: Study) -> list[dict]:
    """One row per annotator (the study's members and anyone else who judged in it, by username):
    items and judgments per stage, flags raised and active time. Four queries whatever the study
    size or the number of annotators."""
    user_model = get_user_model()
    judged = (
        Judgment.objects.filter(study=study, annotator__isnull=False)
        .values("annotator_id", "stage")
        .annotate(
            judgments=Count("id"),
            items=Count("subject", distinct=True) + Count("prompt", distinct=True) + Count("pair", distinct=True),
            # Items with at least one flagged judgment: a flag repeated on every judgment counts once.
            flagged=Count("subject", filter=Q(flag=True), distinct=True)
            + Count("prompt", filter=Q(flag=True), distinct=True)
            + Count("pair", filter=Q(flag=True), distinct=True),
        )
        .order_by()
    )
    feedback = (
        ItemFeedback.objects.filter(study=study)
        .values("annotator_id", "stage")
        .annotate(flagged=Count("id", filter=Q(flag=True)), time_ms=Sum("time_spent_ms"), items=Count("id"))
        .order_by()
    )
    cells: dict[int, dict[int, dict]] = defaultdict(dict)
    for row in judged:
        cells[row["annotator_id"]][row["stage"]] = {
            "judgments": row["judgments"],
            "items": row["items"],
            "flagged_judgments": row["flagged"],
            "flagged_items": 0,
            "time_ms": 0,
        }
    for fb in feedback:
        cell = cells[fb["annotator_id"]].setdefault(
            fb["stage"], {"judgments": 0, "items": fb["items"], "flagged_judgments": 0}
        )
        cell["flagged_items"] = fb["flagged"]
        cell["time_ms"] = fb["time_ms"] or 0

    member_ids = set(study.annotators.values_list("id", flat=True))
    users = user_model.objects.filter(Q(id__in=member_ids) | Q(id__in=cells.keys())).order_by("username")
    rows = []
    for user in users:
        per_stage = []
        for stage in Stage:
            cell = cells[user.id].get(stage.value, {})
            per_stage.append(
                {
                    "stage": stage.value,
                    "items": cell.get("items", 0),
                    "judgments": cell.get("judgments", 0),
                    "flags": max(cell.get("flagged_items", 0), cell.get("flagged_judgments", 0)),
                    "time_ms": cell.get("time_ms", 0),
                }
            )
        items = sum(cell["items"] for cell in per_stage)
        time_ms = sum(cell["time_ms"] for cell in per_stage)
        rows.append(
            {
                "user": user,
                "is_member": user.id in member_ids,
                "stages": per_stage,
                "total_items": items,
                "total_judgments": sum(cell["judgments"] for cell in per_stage),
                "total_flags": sum(cell["flags"] for cell in per_stage),
                # Active time as the screen measured it (idle and hidden-tab time excluded).
                "seconds_per_item": round(time_ms / items / 1000, 1) if items and time_ms else None,
                "judgments_url": _admin_url(
                    "admin:judgments_judgment_changelist",
                    query=f"study__id__exact={study.id}&annotator__id__exact={user.id}",
                ),
            }
        )
    return rows


def dashboard_flags(*, study: Study, limit: int = FLAG_LIST_LIMIT) -> dict:
    """Items an annotator flagged (uncomfortable content, broken item), newest first.

    A flag lives on the item feedback and may be repeated on each judgment of that item; both
    are read and merged so a flag shows once per annotator and item whichever way it was stored.
    """
    flags: dict[tuple[int, int | None, int], dict] = {}
    feedback = (
        ItemFeedback.objects.filter(study=study, flag=True)
        .select_related("annotator", "subject", "prompt", "pair__subject", "pair__prompt")
        .order_by("-updated_at")[:limit]
    )
    for row in feedback:
        key = (row.stage, row.annotator_id, _unit_id(row))
        flags[key] = _flag_row(row, note=row.note, url=_admin_url("admin:judgments_itemfeedback_change", row.pk))
    flagged_judgments = (
        Judgment.objects.filter(study=study, flag=True, annotator__isnull=False)
        .select_related("annotator", "subject", "prompt", "pair__subject", "pair__prompt")
        .order_by("-updated_at")[:limit]
    )
    for judgment in flagged_judgments:
        judgment_key = (judgment.stage, judgment.annotator_id, _unit_id(judgment))
        if judgment_key not in flags:
            url = _admin_url("admin:judgments_judgment_change", judgment.pk)
            flags[judgment_key] = _flag_row(judgment, note=judgment.note, url=url)
    ordered = sorted(flags.values(), key=lambda flag: flag["when"], reverse=True)[:limit]
    _attach_item_urls(study=study, flags=ordered)
    total = ItemFeedback.objects.filter(study=study, flag=True).count() if len(ordered) >= limit else len(ordered)
    return {
        "rows": ordered,
        "total": total,
        "truncated": total > len(ordered),
        "list_url": _admin_url(
            "admin:judgments_itemfeedback_changelist", query=f"study__id__exact={study.id}&flag__exact=1"
        ),
    }


def stages_holding_lease(*, study: Study, annotator: AbstractBaseUser) -> set[int]:
    """Stages in which the annotator holds a live lease (an item to come back to)."""
    return set(
        Assignment.objects.filter(study=study, annotator_id=annotator.pk, status=Assignment.Status.LEASED)
        .values_list("stage", flat=True)
        .distinct()
    )


def study_data_overview(*, study: Study) -> dict:
    """What the study holds and what feeds each stage, for the setup page (a handful of counts)."""
    attributes = Attribute.objects.filter(subject__study=study)
    responses = Response.objects.filter(pair__subject__study=study)
    items = dict(Item.objects.filter(study=study).values_list("stage").annotate(n=Count("id")).order_by())
    by_mode = dict(responses.values_list("mode").annotate(n=Count("id")).order_by())
    return {
        "subjects": Subject.objects.filter(study=study).count(),
        "subjects_linked": Subject.objects.filter(study=study, user__isnull=False).count(),
        "conversations": Conversation.objects.filter(subject__study=study).count(),
        "attributes_merged": attributes.filter(level=Attribute.Level.MERGED).count(),
        "attributes_original": attributes.filter(level=Attribute.Level.ORIGINAL).count(),
        "prompts": Prompt.objects.filter(study=study).count(),
        "pairs": SubjectPrompt.objects.filter(subject__study=study).count(),
        "responses": [(label, by_mode.get(mode, 0)) for mode, label in Response.Mode.choices],
        "items": [(stage.value, stage.label, items.get(stage.value, 0)) for stage in Stage],
    }


def _attach_item_urls(*, study: Study, flags: list[dict]) -> None:
    """Links each flag to its item's page (one query per stage that has flags)."""
    for stage, field_name in ITEM_FIELD_BY_STAGE.items():
        unit_ids = {flag["unit_id"] for flag in flags if flag["stage"] == stage}
        if not unit_ids:
            continue
        items = dict(
            Item.objects.filter(study=study, stage=stage, **{f"{field_name}_id__in": unit_ids}).values_list(
                f"{field_name}_id", "id"
            )
        )
        for flag in flags:
            if flag["stage"] == stage and flag["unit_id"] in items:
                flag["item_url"] = reverse("item-detail", args=[items[flag["unit_id"]]])


def _unit_id(row: Judgment | ItemFeedback) -> int:
    return row.subject_id or row.prompt_id or row.pair_id or 0


def _flag_row(row: Judgment | ItemFeedback, *, note: str, url: str | None) -> dict:
    if row.stage == Stage.CORRECTNESS:
        item = f"Subject {row.subject}"
    elif row.stage == Stage.RELEVANCE:
        item = f"Prompt: {row.prompt}"
    else:
        item = f"{row.pair.subject} with prompt: {row.pair.prompt}" if row.pair else "pair"
    return {
        "stage": row.stage,
        "unit_id": _unit_id(row),
        "item_url": None,
        "annotator": row.annotator.get_username() if row.annotator else "",
        "item": item,
        "note": note,
        "when": row.updated_at,
        "url": url,
    }


def _admin_url(name: str, pk: int | None = None, *, query: str = "") -> str | None:
    """Admin link, or None where the admin does not register that model."""
    try:
        url = reverse(name, args=[pk] if pk is not None else [])
    except NoReverseMatch:
        return None
    return f"{url}?{query}" if query else url

"""Reads over judgments: human consensus per stage.

Majority rule (both stages): an attribute passes when strictly more than half of the human
judgments of it say the positive answer. Ties fail, so "maybe" and disagreement count against
an attribute, and an attribute nobody judged yet passes nothing. Model judgments never count,
and neither does a subject's own first-person judgment of their attributes in stage 1: the
consensus is the k third parties', as in the study design.
"""

from __future__ import annotations

from django.db.models import Count, F, Q

from judgments.models import Judgment
from personalization.models import Study


def attributes_accepted_by_humans(*, study: Study) -> set[int]:
    """Attribute ids that stage 1 accepted: a strict majority of human judgments say "makes_sense"."""
    rows = (
        Judgment.objects.filter(study=study, stage=1, annotator__isnull=False)
        .exclude(subject__user__isnull=False, annotator=F("subject__user"))
        .values("attribute_id")
        .annotate(total=Count("id"), positive=Count("id", filter=Q(answer="makes_sense")))
        .order_by()
    )
    return {row["attribute_id"] for row in rows if 2 * row["positive"] > row["total"]}


def relevant_attributes_by_humans(*, study: Study) -> dict[int, set[int]]:
    """prompt_id -> attribute ids that stage 2 judged relevant to that prompt (strict majority "yes")."""
    rows = (
        Judgment.objects.filter(study=study, stage=2, annotator__isnull=False)
        .values("prompt_id", "attribute_id")
        .annotate(total=Count("id"), positive=Count("id", filter=Q(answer="yes")))
        .order_by()
    )
    relevant: dict[int, set[int]] = {}
    for row in rows:
        if 2 * row["positive"] > row["total"]:
            relevant.setdefault(row["prompt_id"], set()).add(row["attribute_id"])
    return relevant

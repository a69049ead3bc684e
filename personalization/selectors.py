"""Reads of the research domain used by the pipeline, the run pages and the annotation hot path."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

from django.core.cache import cache
from django.db.models import Field, Q, QuerySet

from personalization.models import (
    Attribute,
    Guideline,
    ModelRun,
    ModelRunItem,
    Response,
    Stage,
    Study,
    StudyStage,
    SubjectPrompt,
)


def model_run_latest(*, study: Study, step: str, status: str | None = ModelRun.Status.DONE) -> ModelRun | None:
    runs = ModelRun.objects.filter(study=study, step=step)
    if status is not None:
        runs = runs.filter(status=status)
    return runs.order_by("-created_at", "-id").first()


def model_runs_of_study(*, study: Study) -> QuerySet[ModelRun]:
    return ModelRun.objects.filter(study=study).order_by("-created_at", "-id")


def merged_attributes(*, study: Study, merge_run_id: int | None) -> QuerySet[Attribute]:
    """The merged attributes a step works on: those brought in (imported or suggested by annotators)
    plus those of one merge run. Other merge runs are left out so reruns do not pile up duplicates."""
    scope = Q(model_run__isnull=True)
    if merge_run_id is not None:
        scope |= Q(model_run_id=merge_run_id)
    return (
        Attribute.objects.filter(subject__study=study, level=Attribute.Level.MERGED)
        .filter(scope)
        .order_by("subject_id", "id")
    )


def merged_attributes_by_subject(*, study: Study, merge_run_id: int | None) -> dict[int, list[Attribute]]:
    found: dict[int, list[Attribute]] = defaultdict(list)
    for attribute in merged_attributes(study=study, merge_run_id=merge_run_id):
        found[attribute.subject_id].append(attribute)
    return dict(found)


def pairs_of_study(*, study: Study) -> QuerySet[SubjectPrompt]:
    return SubjectPrompt.objects.filter(subject__study=study).select_related("subject", "prompt").order_by("id")


def relevance_run_selection(*, run: ModelRun) -> dict[int, set[int]]:
    """prompt id -> attribute ids a relevance run's model answered YES for.

    Read from the run's own items (each records the model's answer), so generation can use a
    model's choices without reaching into the judgments layer above.
    """
    selected: dict[int, set[int]] = defaultdict(set)
    items = ModelRunItem.objects.filter(run=run, status=ModelRunItem.Status.DONE).values_list("input_key", "raw_output")
    for key, raw in items:
        parts = key.split(":")
        if len(parts) != 4:
            continue
        try:
            answer = json.loads(raw).get("answer")
        except (json.JSONDecodeError, AttributeError):
            continue
        if answer == "yes":
            selected[int(parts[1])].add(int(parts[3]))
    return dict(selected)


def run_latest_errors(*, run: ModelRun, limit: int = 5) -> list[dict[str, object]]:
    rows = (
        ModelRunItem.objects.filter(run=run)
        .exclude(error="")
        .order_by("-updated_at", "-id")
        .values("id", "input_key", "status", "error", "updated_at")[:limit]
    )
    return [dict(row) for row in rows]


def run_failed_items(*, run: ModelRun, limit: int = 50) -> QuerySet[ModelRunItem]:
    return ModelRunItem.objects.filter(run=run, status=ModelRunItem.Status.FAILED).order_by("-updated_at")[:limit]


def run_attributes(*, run: ModelRun, limit: int = 50) -> QuerySet[Attribute]:
    return Attribute.objects.filter(model_run=run).select_related("subject").order_by("id")[:limit]


def run_responses(*, run: ModelRun, limit: int = 50) -> QuerySet[Response]:
    return Response.objects.filter(model_run=run).select_related("pair__prompt", "pair__subject").order_by("id")[:limit]


@dataclass(frozen=True)
class StageConfig:
    """What the annotation hot path needs to know about one stage of a study."""

    lease_seconds: int
    judgments_per_item: int
    gate_on_previous_stage: bool
    guideline_version: int | None
    guideline_text: str


# Kept short as a bound on staleness: the receivers in personalization.receivers forget a study's
# entries when its stage settings or guidelines change, but a request that read the database just
# before such a commit may store the old values again right after it.
STAGE_CONFIG_CACHE_SECONDS = 60


def _stage_config_key(study_id: int, stage: int) -> str:
    return f"attune:stage-config:{study_id}:{stage}"


def stage_config(*, study_id: int, stage: int) -> StageConfig:
    """A stage's settings (defaults where the study has none) and its latest guidelines.

    Every "next item" and submit needs these, so they come from the shared cache: two queries
    fewer per request, whatever the study size.
    """
    key = _stage_config_key(study_id, stage)
    config = cache.get(key)
    if isinstance(config, StageConfig):
        return config
    settings = StudyStage.objects.filter(study_id=study_id, stage=stage).order_by("pk").first()
    guideline = Guideline.objects.filter(study_id=study_id, stage=stage).order_by("-version").first()

    def default(field: str) -> Any:
        return cast(Field, StudyStage._meta.get_field(field)).get_default()

    config = StageConfig(
        lease_seconds=settings.lease_seconds if settings else default("lease_seconds"),
        judgments_per_item=settings.judgments_per_item if settings else default("judgments_per_item"),
        gate_on_previous_stage=settings.gate_on_previous_stage if settings else False,
        guideline_version=guideline.version if guideline else None,
        guideline_text=guideline.text if guideline else "",
    )
    cache.set(key, config, STAGE_CONFIG_CACHE_SECONDS)
    return config


def stage_config_forget(*, study_id: int) -> None:
    """Drops the cached stage configs of a study (all stages)."""
    cache.delete_many([_stage_config_key(study_id, stage) for stage in Stage.values])

"""Run inside a worker world (`manage.py shell -c`) by the integration test: a JSON-able summary of
every run's items and outputs, with any duplicate output spelled out."""

from __future__ import annotations

from django.db.models import Count

from judgments.models import Judgment
from personalization.models import Attribute, ModelRun, ModelRunItem, Response


def _duplicates(queryset, fields: list[str]) -> int:  # noqa: ANN001 (any queryset)
    return queryset.values(*fields).annotate(n=Count("id")).filter(n__gt=1).count()


def report() -> dict:
    runs = {}
    for run in ModelRun.objects.order_by("id"):
        items = run.items.values("status").annotate(n=Count("id"))
        by_status = {row["status"]: row["n"] for row in items}
        responses = Response.objects.filter(model_run=run)
        judgments = Judgment.objects.filter(model_run=run)
        runs[str(run.pk)] = {
            "step": run.step,
            "status": run.status,
            "total": run.total_count,
            "done_count": run.done_count,
            "failed_count": run.failed_count,
            "items": by_status,
            "errors": sorted(set(run.items.exclude(error="").values_list("error", flat=True)))[:3],
            "responses": responses.count(),
            "judgments": judgments.count(),
            "attributes": Attribute.objects.filter(model_run=run).count(),
            "duplicate_responses": _duplicates(responses, ["pair_id", "mode"]),
            "duplicate_judgments": _duplicates(
                judgments, ["stage", "subject_id", "prompt_id", "pair_id", "attribute_id"]
            ),
            "duplicate_attributes": _duplicates(
                Attribute.objects.filter(model_run=run), ["subject_id", "level", "text"]
            ),
            "duplicate_items": _duplicates(ModelRunItem.objects.filter(run=run), ["input_key"]),
            "response_keys_done": sorted(
                key for key in run.items.filter(status="done").values_list("input_key", flat=True)
            )
            if run.step == "generate"
            else [],
            "response_keys_written": sorted(
                f"pair:{pair}:mode:{mode}" for pair, mode in responses.values_list("pair_id", "mode")
            ),
        }
    return runs

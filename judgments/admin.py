"""Admin for judgments: read-mostly views for researchers."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from judgments.models import ItemFeedback, Judgment, JudgmentRevision


class OwnedStudyAdmin(admin.ModelAdmin):
    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(study__owners=request.user).distinct()


@admin.register(Judgment)
class JudgmentAdmin(OwnedStudyAdmin):
    list_display = ["id", "study", "stage", "annotator", "model_run", "attribute", "answer", "flag", "updated_at"]
    list_filter = ["stage", "study", "flag"]
    raw_id_fields = [
        "annotator",
        "model_run",
        "subject",
        "prompt",
        "pair",
        "attribute",
        "generic_response",
        "personalized_response",
    ]


@admin.register(ItemFeedback)
class ItemFeedbackAdmin(OwnedStudyAdmin):
    list_display = ["id", "study", "stage", "annotator", "flag", "updated_at"]
    list_filter = ["stage", "study", "flag"]
    raw_id_fields = ["annotator", "subject", "prompt", "pair"]


@admin.register(JudgmentRevision)
class JudgmentRevisionAdmin(admin.ModelAdmin):
    list_display = ["judgment", "answer", "recorded_at"]
    raw_id_fields = ["judgment"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(judgment__study__owners=request.user).distinct()

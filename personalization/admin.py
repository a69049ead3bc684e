"""Admin for the research data. Researchers (staff) see the studies they own; superusers see all."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from personalization import models as m


class StudyScopedAdmin(admin.ModelAdmin):
    """Limits rows to studies the staff user owns. `study_path` is the lookup from the row to its study."""

    study_path = "study"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.study_path}__owners": request.user}).distinct()


class StudyStageInline(admin.TabularInline):
    model = m.StudyStage
    extra = 0


class GuidelineInline(admin.StackedInline):
    model = m.Guideline
    extra = 0


@admin.register(m.Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "description"]
    filter_horizontal = ["owners", "annotators"]
    inlines = [StudyStageInline, GuidelineInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(owners=request.user)


class TurnInline(admin.TabularInline):
    model = m.Turn
    extra = 0
    fields = ["index", "role", "content"]


@admin.register(m.Subject)
class SubjectAdmin(StudyScopedAdmin):
    list_display = ["external_id", "source", "is_synthetic", "study", "conversation_count"]
    list_filter = ["source", "is_synthetic", "study"]
    search_fields = ["external_id"]
    raw_id_fields = ["user"]

    @admin.display(description="conversations")
    def conversation_count(self, obj: m.Subject) -> int:
        return obj.conversations.count()


@admin.register(m.Conversation)
class ConversationAdmin(StudyScopedAdmin):
    study_path = "subject__study"
    list_display = ["conversation_hash", "subject", "model", "timestamp"]
    list_filter = ["subject__study", "subject__source"]
    search_fields = ["conversation_hash", "subject__external_id"]
    raw_id_fields = ["subject"]
    inlines = [TurnInline]


@admin.register(m.Attribute)
class AttributeAdmin(StudyScopedAdmin):
    study_path = "subject__study"
    list_display = ["text", "subject", "level", "origin", "confidence", "model_run"]
    list_filter = ["level", "origin", "subject__study"]
    search_fields = ["text", "reason", "subject__external_id"]
    raw_id_fields = ["subject", "model_run", "evidence_turns", "merged_from"]


@admin.register(m.Prompt)
class PromptAdmin(StudyScopedAdmin):
    list_display = ["text", "source", "source_id", "study"]
    list_filter = ["source", "study"]
    search_fields = ["text", "source_id"]
    exclude = ["text_hash"]


@admin.register(m.SubjectPrompt)
class SubjectPromptAdmin(StudyScopedAdmin):
    study_path = "subject__study"
    list_display = ["subject", "prompt"]
    raw_id_fields = ["subject", "prompt"]


@admin.register(m.Response)
class ResponseAdmin(StudyScopedAdmin):
    study_path = "pair__subject__study"
    list_display = ["pair", "mode", "model_run", "created_at"]
    list_filter = ["mode"]
    raw_id_fields = ["pair", "conditioned_on", "model_run"]


@admin.register(m.RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ["name", "backend", "model_id", "revision", "server"]


class ModelRunItemInline(admin.TabularInline):
    model = m.ModelRunItem
    extra = 0
    fields = ["input_key", "status", "attempts", "error"]
    readonly_fields = fields
    show_change_link = True


@admin.register(m.ModelRun)
class ModelRunAdmin(StudyScopedAdmin):
    list_display = ["id", "study", "step", "model_name", "status", "done_count", "failed_count", "total_count"]
    list_filter = ["step", "status", "study"]
    readonly_fields = ["template_hash", "created_at", "started_at", "finished_at"]

"""Admin for the research data. Researchers (staff) see the studies they own; superusers see all."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from personalization import models as m
from personalization.importers import ImportValidationError
from personalization.importers.access import study_get_for_import
from personalization.importers.uploads import FORMATS_BY_KIND, KINDS, upload_import


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


class StudyImportForm(forms.Form):
    """The admin's "Import data" form; the same choices as the import API."""

    kind = forms.ChoiceField(choices=[(kind, kind.capitalize()) for kind in KINDS])
    file = forms.FileField(help_text="JSONL (conversations, attributes, prompts) or CSV (prompts).")
    format = forms.ChoiceField(
        choices=[
            ("auto", "Detect automatically"),
            ("wildchat", "WildChat JSONL (conversations)"),
            ("openai", "OpenAI chat JSONL (conversations)"),
            ("jsonl", "JSONL (prompts)"),
            ("csv", "CSV (prompts)"),
        ],
        initial="auto",
        required=False,
    )
    source = forms.CharField(
        max_length=m.Subject._meta.get_field("source").max_length,
        required=False,
        help_text="Source tag for subjects or prompts whose lines name none (e.g. wildchat, lima).",
    )
    is_synthetic = forms.BooleanField(required=False, label="Synthetic subjects")
    subject_key = forms.CharField(
        max_length=100,
        required=False,
        help_text="Conversations: the field naming the subject (default: hashed_ip or user).",
    )

    def clean(self) -> dict:
        data = super().clean() or {}
        data["format"] = data.get("format") or "auto"
        kind, fmt = data.get("kind"), data["format"]
        if kind and fmt and fmt not in FORMATS_BY_KIND[kind]:
            self.add_error("format", f"{kind.capitalize()} imports accept: {', '.join(FORMATS_BY_KIND[kind])}.")
        return data


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

    def get_urls(self) -> list[URLPattern]:
        upload = path(
            "<path:object_id>/import/",
            self.admin_site.admin_view(self.import_view),
            name="personalization_study_import",
        )
        return [upload, *super().get_urls()]

    def import_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Upload page: runs the importer and reports the counts, or the file's errors."""
        study = study_get_for_import(user=request.user, study_id=object_id)
        if not self.has_change_permission(request, study):
            raise PermissionDenied
        errors: list[str] = []
        total = 0
        if request.method == "POST":
            form = StudyImportForm(request.POST, request.FILES)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    report = upload_import(
                        study=study,
                        kind=data["kind"],
                        upload=data["file"],
                        fmt=data["format"],
                        source=data["source"],
                        is_synthetic=data["is_synthetic"],
                        subject_key=data["subject_key"],
                    )
                except ImportValidationError as exc:
                    errors, total = exc.errors, exc.total
                else:
                    messages.success(request, f"Imported {data['file'].name}: {report.summary()}.")
                    return HttpResponseRedirect(reverse("admin:personalization_study_change", args=[study.pk]))
        else:
            form = StudyImportForm()
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import data into {study.name}",
            "opts": self.model._meta,
            "original": study,
            "form": form,
            "import_errors": errors,
            "import_errors_more": total - len(errors),
            "import_errors_total": total,
        }
        return TemplateResponse(request, "admin/personalization/study/import.html", context)


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
    fields = ("input_key", "status", "attempts", "error")
    readonly_fields = ("input_key", "status", "attempts", "error")
    show_change_link = True


@admin.register(m.ModelRun)
class ModelRunAdmin(StudyScopedAdmin):
    list_display = ["id", "study", "step", "model_name", "status", "done_count", "failed_count", "total_count"]
    list_filter = ["step", "status", "study"]
    readonly_fields = ["template_hash", "created_at", "started_at", "finished_at"]

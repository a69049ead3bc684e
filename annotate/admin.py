"""Admin for items and assignments: read-only views for researchers, scoped to the studies they own.

Counters and statuses are only ever changed by annotate.services (which keep the slot counts
consistent under concurrency), so nothing here edits them by hand.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from annotate.models import Assignment, Item
from annotate.services import assignments_reclaim_expired
from personalization.models import Attribute, Study


class OwnedStudyReadOnlyAdmin(admin.ModelAdmin):
    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(study__owners=request.user).distinct()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


@admin.register(Item)
class ItemAdmin(OwnedStudyReadOnlyAdmin):
    """Researchers choose what feeds a stage here: until anyone has been assigned an item, they
    may narrow the attributes it asks about, or delete it (building the stage again brings a
    deleted item back). After that the item is frozen, since judgments already refer to what it
    showed (checked when the page loads). The study's item pages (annotate.screens.study_items)
    also choose stage-3 responses and withdraw items for good, and check under the item's row lock."""

    list_display = ["id", "study", "stage", "subject", "prompt", "pair", "k", "slots_taken", "done_count", "withdrawn"]
    list_filter = ["stage", "withdrawn", "study"]
    raw_id_fields = ["subject", "prompt", "pair", "generic_response", "personalized_response", "attributes"]
    readonly_fields = (
        *("study", "stage", "subject", "prompt", "pair", "generic_response", "personalized_response"),
        *("k", "slots_taken", "done_count", "seed", "withdrawn"),
    )
    fields = (*readonly_fields[:8], "attributes", *readonly_fields[8:])

    def _untouched(self, obj: object | None) -> bool:
        return not isinstance(obj, Item) or not obj.assignments.exists()

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return admin.ModelAdmin.has_change_permission(self, request, obj) and self._untouched(obj)

    def has_delete_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return admin.ModelAdmin.has_delete_permission(self, request, obj) and self._untouched(obj)

    def get_form(self, request: HttpRequest, obj: Item | None = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and "attributes" in form.base_fields:
            # Only attributes of this item's own study can be chosen: raw ids from elsewhere are rejected.
            field = cast(forms.ModelMultipleChoiceField, form.base_fields["attributes"])
            field.queryset = Attribute.objects.filter(subject__study=obj.study_id)
        return form


@admin.register(Assignment)
class AssignmentAdmin(OwnedStudyReadOnlyAdmin):
    list_display = ["id", "study", "stage", "item", "annotator", "status", "first_person", "lease_expires_at"]
    list_filter = ["status", "stage", "first_person", "study"]
    raw_id_fields = ["item", "annotator"]
    actions = ["reclaim_expired"]

    def has_delete_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        # An assignment is the engine's record that an annotator held an item: deleting one would
        # leave its slot counted, offer the item to the same person again, and let a judged item
        # pass for untouched. Skips and lapsed leases are the ways out.
        return False

    @admin.action(description="Reclaim lapsed leases of these studies")
    def reclaim_expired(self, request: HttpRequest, queryset: QuerySet[Assignment]) -> None:
        # The queryset comes from the changelist, so it is already limited to owned studies.
        reclaimed = sum(
            assignments_reclaim_expired(study=study)
            for study in Study.objects.filter(pk__in=queryset.values("study_id"))
        )
        self.message_user(request, f"Reclaimed {reclaimed} lapsed lease(s).", messages.SUCCESS)

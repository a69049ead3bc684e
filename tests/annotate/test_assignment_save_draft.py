"""annotate.services.assignment_save_draft."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from annotate.models import Assignment
from annotate.services import MAX_DRAFT_BYTES, assignment_next, assignment_save_draft, assignment_skip

pytestmark = pytest.mark.django_db


def test_draft_is_stored_and_returned(study, annotator, stage1_items) -> None:
    stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    assignment_save_draft(assignment=assignment, draft={"answers": {"1": "maybe"}})
    assert Assignment.objects.get(pk=assignment.pk).draft == {"answers": {"1": "maybe"}}


def test_oversized_or_non_object_drafts_are_rejected(study, annotator, stage1_items) -> None:
    stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    with pytest.raises(ValidationError, match="draft: expected a JSON object"):
        assignment_save_draft(assignment=assignment, draft=["x"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="bytes is more than"):
        assignment_save_draft(assignment=assignment, draft={"x": "y" * MAX_DRAFT_BYTES})


def test_skipped_assignments_keep_no_draft(study, annotator, stage1_items) -> None:
    stage1_items(1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    assignment_skip(assignment=assignment)
    with pytest.raises(ValidationError, match="skipped or has expired"):
        assignment_save_draft(assignment=assignment, draft={"a": 1})

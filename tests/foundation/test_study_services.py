"""personalization.services.guideline_publish and study_stage_configure."""

from __future__ import annotations

import pytest

from personalization.models import Guideline, StudyStage
from personalization.services import guideline_publish, study_stage_configure

pytestmark = pytest.mark.django_db


def test_guideline_publish_adds_a_version_only_when_the_text_changes(study, owner) -> None:
    assert guideline_publish(study=study, stage=2, text="Guidelines for stage 2\r\n", user=owner) is None
    published = guideline_publish(study=study, stage=2, text="Say YES only if it changes the answer.", user=owner)
    assert published is not None and published.version == 2 and published.created_by == owner
    assert guideline_publish(study=study, stage=2, text="Say YES only if it changes the answer.  ", user=owner) is None
    assert list(Guideline.objects.filter(study=study, stage=2).values_list("version", flat=True)) == [2, 1]
    # Other stages keep their own numbering.
    assert Guideline.objects.filter(study=study, stage=1).count() == 1


def test_study_stage_configure_updates_in_place(study) -> None:
    settings = study_stage_configure(
        study=study, stage=3, judgments_per_item=5, lease_seconds=600, gate_on_previous_stage=True
    )
    assert (settings.judgments_per_item, settings.lease_seconds, settings.gate_on_previous_stage) == (5, 600, True)
    assert StudyStage.objects.filter(study=study, stage=3).count() == 1

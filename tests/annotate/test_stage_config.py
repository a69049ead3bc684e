"""The cached stage config (lease, k, guidelines) that the hot path reads instead of the database."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotate.selectors import assignment_payload
from annotate.services import assignment_next, assignment_submit
from judgments.models import Judgment
from personalization.models import StudyStage
from personalization.selectors import stage_config
from personalization.services import guideline_publish, study_stage_configure


def test_stage_config_is_read_once_then_served_from_the_cache(study) -> None:
    first = stage_config(study_id=study.pk, stage=1)
    with CaptureQueriesContext(connection) as queries:
        again = stage_config(study_id=study.pk, stage=1)
    assert again == first and len(queries) == 0
    assert first.guideline_version == 1 and first.guideline_text == "Guidelines for stage 1"


def test_publishing_guidelines_reaches_the_next_payload_and_the_judgments(
    study, owner, annotator, stage1_items
) -> None:
    stage1_items(1, k=1)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    assert assignment_payload(assignment=assignment)["guidelines"]["version"] == 1  # now cached
    guideline_publish(study=study, stage=1, text="Read every conversation first.", user=owner)
    payload = assignment_payload(assignment=assignment)
    assert payload["guidelines"] == {"version": 2, "text": "Read every conversation first."}
    assignment_submit(assignment=assignment, answers={a["id"]: "makes_sense" for a in payload["attributes"]})
    assert set(Judgment.objects.filter(annotator=annotator).values_list("guidelines_version", flat=True)) == {2}


def test_changed_stage_settings_apply_to_the_next_lease(study, annotator, stage1_items) -> None:
    stage1_items(1, k=1, lease_seconds=900)
    assert stage_config(study_id=study.pk, stage=1).lease_seconds == 900
    study_stage_configure(study=study, stage=1, judgments_per_item=1, lease_seconds=45, gate_on_previous_stage=False)
    assignment = assignment_next(study=study, stage=1, annotator=annotator)
    lease = (assignment.lease_expires_at - assignment.created_at).total_seconds()
    assert 40 < lease < 50


def test_a_study_without_stage_settings_gets_the_defaults(study) -> None:
    study_stage_configure(study=study, stage=2, judgments_per_item=5, lease_seconds=60, gate_on_previous_stage=True)
    assert stage_config(study_id=study.pk, stage=2).judgments_per_item == 5  # now cached
    StudyStage.objects.filter(study=study, stage=2).get().delete()  # a delete forgets it too
    config = stage_config(study_id=study.pk, stage=2)
    assert config.lease_seconds == 900 and config.judgments_per_item == 3 and config.gate_on_previous_stage is False

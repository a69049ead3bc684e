"""annotate.selectors.assignment_payload: what each stage's screen receives."""

from __future__ import annotations

import json

import pytest

from annotate.selectors import assignment_payload
from annotate.services import assignment_next, assignment_submit
from personalization.models import Guideline

pytestmark = pytest.mark.django_db


def test_stage1_payload_has_conversations_attributes_and_evidence(study, annotator, stage1_items) -> None:
    (item,) = stage1_items(1)
    Guideline.objects.create(study=study, stage=1, version=2, text="Newer guidelines")
    payload = assignment_payload(assignment=assignment_next(study=study, stage=1, annotator=annotator))
    json.dumps(payload)
    assert payload["stage"] == 1
    assert payload["study"] == {"id": study.pk, "name": study.name}
    assert payload["guidelines"] == {"version": 2, "text": "Newer guidelines"}
    (conversation,) = payload["conversations"]
    assert [t["role"] for t in conversation["turns"]] == ["user", "assistant"]
    # Raw text: escaping is the screen's job, and it must not be pre-escaped twice.
    assert conversation["turns"][0]["content"] == "I cook <b>vegetarian</b> food"
    turn_ids = {t["id"] for t in conversation["turns"]}
    assert len(payload["attributes"]) == item.attributes.count()
    for attribute in payload["attributes"]:
        assert set(attribute) == {"id", "text", "reason", "confidence", "evidence_turn_ids"}
        assert set(attribute["evidence_turn_ids"]) <= turn_ids
    assert payload["existing"] == {}
    # Only the annotator's own counts: the study's come from the stage progress endpoint.
    assert set(payload["progress"]) == {
        "mine_done",
        "mine_available",
        "mine_available_capped",
    }


def test_stage2_payload_hides_subjects_and_shuffles_with_the_item_seed(study, annotator, stage2_items) -> None:
    (item,) = stage2_items
    payload = assignment_payload(assignment=assignment_next(study=study, stage=2, annotator=annotator))
    assert payload["prompt"]["id"] == item.prompt_id
    assert all(set(a) == {"id", "text"} for a in payload["attributes"])
    assert "subject" not in json.dumps(payload)
    assert sorted(a["id"] for a in payload["attributes"]) == sorted(item.attributes.values_list("id", flat=True))
    again = assignment_payload(assignment=assignment_next(study=study, stage=2, annotator=annotator))
    assert [a["id"] for a in again["attributes"]] == [a["id"] for a in payload["attributes"]]


def test_stage3_payload_shows_a_and_b_without_modes(study, annotator, stage3_item) -> None:
    assignment = assignment_next(study=study, stage=3, annotator=annotator)
    payload = assignment_payload(assignment=assignment)
    personalized_side = assignment.personalized_side
    assert payload["responses"][personalized_side] == "Personalized answer."
    assert payload["responses"]["B" if personalized_side == "A" else "A"] == "Generic answer."
    text = json.dumps(payload)
    for label in ("generic", "all_attributes", "personalized_side", "mode"):
        assert label not in text


def test_existing_answers_come_back_in_shown_terms_for_editing(study, annotator, stage3_item) -> None:
    assignment = assignment_next(study=study, stage=3, annotator=annotator)
    answers = {a.pk: "4" for a in stage3_item.attributes.all()}
    assignment_submit(assignment=assignment, answers=answers, note="overall", attribute_notes={}, flag=True)
    payload = assignment_payload(assignment=assignment)
    assert payload["existing"] == answers
    assert payload["feedback"] == {"note": "overall", "missing_attributes": "", "flag": True}

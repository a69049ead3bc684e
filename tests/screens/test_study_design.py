from __future__ import annotations

from django.test import Client

from annotate.models import Item
from personalization.models import Guideline, Study, StudyStage, SubjectPrompt
from tests.factories import AttributeFactory, PromptFactory, SubjectFactory


def _settings(study: Study, **overrides: object) -> dict:
    data: dict = {
        "action": "settings",
        "name": study.name,
        "description": study.description,
        "status": study.status,
        "annotators": list(study.annotators.values_list("pk", flat=True)),
        "prompts_per_subject_min": 1,
        "prompts_per_subject_max": 2,
        "subjects_per_prompt_min": 1,
        "subjects_per_prompt_max": 3,
    }
    for guideline in Guideline.objects.filter(study=study):
        data[f"stage{guideline.stage}-guidelines"] = guideline.text
    for stage in StudyStage.objects.filter(study=study):
        data[f"stage{stage.stage}-judgments_per_item"] = stage.judgments_per_item
        data[f"stage{stage.stage}-lease_seconds"] = stage.lease_seconds
    data.update(overrides)
    return data


def test_changed_guidelines_publish_a_new_version_only_for_that_stage(owner_client: Client, study: Study) -> None:
    response = owner_client.post(
        f"/studies/{study.pk}/design/",
        _settings(study, **{"stage2-guidelines": "Be strict.", "stage2-gate_on_previous_stage": "on"}),
    )
    assert response.status_code == 302
    versions = sorted(Guideline.objects.filter(study=study).values_list("stage", "version"))
    assert versions == [(1, 1), (2, 1), (2, 2), (3, 1)]
    assert Guideline.objects.get(study=study, stage=2, version=2).text == "Be strict."
    assert StudyStage.objects.get(study=study, stage=2).gate_on_previous_stage is True
    study.refresh_from_db()
    assert (study.prompts_per_subject_max, study.subjects_per_prompt_max) == (2, 3)


def test_pairing_records_the_seed_and_building_creates_items(owner_client: Client, study: Study) -> None:
    subjects = [SubjectFactory(study=study) for _ in range(3)]
    for subject in subjects:
        AttributeFactory(subject=subject)
    for _ in range(3):
        PromptFactory(study=study)
    owner_client.post(f"/studies/{study.pk}/design/", _settings(study))

    response = owner_client.post(f"/studies/{study.pk}/design/", {"action": "pair", "seed": "42"}, follow=True)
    study.refresh_from_db()
    assert study.pairing_seed == 42
    pairs = SubjectPrompt.objects.filter(subject__study=study).count()
    assert pairs >= 3
    assert f"{pairs} subject-prompt pairs (seed 42)" in response.content.decode()

    response = owner_client.post(f"/studies/{study.pk}/design/", {"action": "build", "stage": "1"}, follow=True)
    assert Item.objects.filter(study=study, stage=1).count() == 3
    assert "Stage 1: 3 new items." in response.content.decode()
    # Building again adds nothing.
    response = owner_client.post(f"/studies/{study.pk}/design/", {"action": "build", "stage": "1"}, follow=True)
    assert "Stage 1: 0 new items." in response.content.decode()


def test_impossible_pairing_shows_the_services_message(owner_client: Client, study: Study) -> None:
    SubjectFactory(study=study)
    PromptFactory(study=study)
    response = owner_client.post(f"/studies/{study.pk}/design/", {"action": "pair", "seed": "1"}, follow=True)
    html = response.content.decode()
    assert "Pairing failed:" in html
    assert not SubjectPrompt.objects.exists()


def test_page_shows_what_feeds_each_stage(owner_client: Client, populated: Study) -> None:
    response = owner_client.get(f"/studies/{populated.pk}/design/")
    assert response.status_code == 200
    overview = response.context["overview"]
    assert (overview["subjects"], overview["prompts"], overview["pairs"], overview["attributes_merged"]) == (2, 2, 4, 6)
    assert overview["items"] == [
        (1, "Attribute correctness", 2),
        (2, "Attribute relevance", 2),
        (3, "Personalized vs generic", 4),
    ]


def test_annotators_and_outsiders_get_404(annotator_client: Client, outsider_client: Client, study: Study) -> None:
    for client in (annotator_client, outsider_client):
        assert client.get(f"/studies/{study.pk}/design/").status_code == 404
        assert client.post(f"/studies/{study.pk}/design/", {"action": "build", "stage": "1"}).status_code == 404


def test_invalid_settings_are_shown_with_errors_and_nothing_changes(owner_client: Client, study: Study) -> None:
    response = owner_client.post(
        f"/studies/{study.pk}/design/",
        _settings(study, name="", **{"stage1-judgments_per_item": "many"}),
    )
    assert response.status_code == 200
    assert "name" in response.context["study_form"].errors
    assert "judgments_per_item" in response.context["stage_forms"][0].errors
    assert f"Setup: {study.name}" in response.content.decode()
    study.refresh_from_db()
    assert study.name == "Test study"
    assert StudyStage.objects.get(study=study, stage=1).judgments_per_item == 3

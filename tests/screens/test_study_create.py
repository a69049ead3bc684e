from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client

from annotate.forms import DEFAULT_GUIDELINES
from personalization.models import Guideline, Study, StudyStage


def _form(**overrides: object) -> dict:
    data: dict = {
        "name": "Dinner study",
        "description": "Who likes what",
        "status": "open",
        "prompts_per_subject_min": 2,
        "prompts_per_subject_max": 5,
        "subjects_per_prompt_min": 2,
        "subjects_per_prompt_max": 4,
    }
    for stage in (1, 2, 3):
        data[f"stage{stage}-judgments_per_item"] = stage + 1
        data[f"stage{stage}-lease_seconds"] = 600
        data[f"stage{stage}-guidelines"] = f"Guidelines {stage}"
    data["stage3-gate_on_previous_stage"] = "on"
    data.update(overrides)
    return data


def test_staff_user_creates_a_study_and_owns_it(owner_client: Client, owner: User, annotator: User) -> None:
    response = owner_client.post("/studies/new/", _form(annotators=[annotator.pk]))
    study = Study.objects.get(name="Dinner study")
    assert response.status_code == 302
    assert response["Location"] == f"/studies/{study.pk}/design/"
    assert list(study.owners.all()) == [owner]
    assert list(study.annotators.all()) == [annotator]
    assert study.status == "open"
    stages = {s.stage: s for s in StudyStage.objects.filter(study=study)}
    assert {n: (s.judgments_per_item, s.lease_seconds, s.gate_on_previous_stage) for n, s in stages.items()} == {
        1: (2, 600, False),
        2: (3, 600, False),
        3: (4, 600, True),
    }
    guidelines = Guideline.objects.filter(study=study)
    assert sorted(guidelines.values_list("stage", "version", "text", "created_by")) == [
        (1, 1, "Guidelines 1", owner.pk),
        (2, 1, "Guidelines 2", owner.pk),
        (3, 1, "Guidelines 3", owner.pk),
    ]


def test_form_starts_with_default_guidelines(owner_client: Client) -> None:
    html = owner_client.get("/studies/new/").content.decode()
    assert "would this attribute change the response in any way, explicitly or implicitly?" in html
    assert DEFAULT_GUIDELINES[3].split(":")[0] in html


def test_bad_input_names_the_field_and_creates_nothing(owner_client: Client) -> None:
    response = owner_client.post(
        "/studies/new/", _form(prompts_per_subject_min=6, **{"stage2-judgments_per_item": 0, "stage1-lease_seconds": 5})
    )
    assert response.status_code == 200
    errors = response.context["study_form"].errors
    assert "prompts_per_subject_max" in errors
    assert "at least the minimum (6)" in errors["prompts_per_subject_max"][0]
    stage_errors = {form.stage: form.errors for form in response.context["stage_forms"]}
    assert "judgments_per_item" in stage_errors[2]
    assert "lease_seconds" in stage_errors[1]
    assert not Study.objects.filter(name="Dinner study").exists()


def test_non_staff_users_cannot_create_studies(annotator_client: Client) -> None:
    assert annotator_client.get("/studies/new/").status_code == 403
    assert annotator_client.post("/studies/new/", _form()).status_code == 403
    assert not Study.objects.exists()

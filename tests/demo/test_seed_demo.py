"""seed_demo and `manage.py seed_demo`: accounts, group, study, stages, guidelines, imported data;
idempotence; the researcher's admin view of the demo study."""

from __future__ import annotations

from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.utils.html import escape

from annotate.management.commands.seed_demo import DEMO_PAIRING_SEED
from annotate.models import Item
from annotate.selectors import assignment_payload
from annotate.services import assignment_next
from personalization.demo import seed
from personalization.demo.guidelines import GUIDELINES_V1
from personalization.models import (
    Attribute,
    Conversation,
    Guideline,
    Prompt,
    Stage,
    Study,
    StudyStage,
    Subject,
    SubjectPrompt,
)


def row_counts() -> dict[str, int]:
    """Rows of every model of the apps the demo touches, plus users, groups and memberships."""
    counts = {
        model._meta.label: model.objects.count()
        for label in ("personalization", "judgments", "annotate", "auth")
        for model in apps.get_app_config(label).get_models()
    }
    counts["group permissions"] = Group.permissions.through.objects.count()
    counts["user groups"] = User.groups.through.objects.count()
    counts["study owners"] = Study.owners.through.objects.count()
    counts["study annotators"] = Study.annotators.through.objects.count()
    counts["attribute evidence"] = Attribute.evidence_turns.through.objects.count()
    counts["attribute merged_from"] = Attribute.merged_from.through.objects.count()
    return counts


def test_seed_creates_researcher_and_annotators_with_demo_passwords(demo: seed.DemoSeed) -> None:
    researcher = User.objects.get(username="researcher")
    assert researcher.is_staff and not researcher.is_superuser
    assert researcher.check_password("researcher-demo")
    assert list(researcher.groups.values_list("name", flat=True)) == ["Researchers"]
    for name in ("annotator1", "annotator2", "annotator3"):
        annotator = User.objects.get(username=name)
        assert annotator.check_password("annotator-demo")
        assert not annotator.is_staff
    assert [u.username for u in demo.annotators] == ["annotator1", "annotator2", "annotator3"]


def test_researchers_group_has_every_crud_permission_of_the_research_apps(demo: seed.DemoSeed) -> None:
    researcher = User.objects.get(username="researcher")
    for label in ("personalization", "judgments"):
        for model in apps.get_app_config(label).get_models():
            for action in ("add", "change", "view", "delete"):
                assert researcher.has_perm(f"{label}.{action}_{model._meta.model_name}"), (label, action, model)
    assert not researcher.has_perm("auth.add_user")


def test_seed_creates_the_open_demo_study_with_owner_and_members(demo: seed.DemoSeed) -> None:
    study = Study.objects.get(name="Demo: everyday assistant conversations")
    assert study == demo.study
    assert study.status == Study.Status.OPEN
    assert "over-generalized" in study.description
    assert list(study.owners.values_list("username", flat=True)) == ["researcher"]
    assert sorted(study.annotators.values_list("username", flat=True)) == ["annotator1", "annotator2", "annotator3"]


def test_seed_creates_ungated_stages_with_k3_and_15_minute_leases(demo: seed.DemoSeed) -> None:
    stages = list(StudyStage.objects.filter(study=demo.study).order_by("stage"))
    assert [s.stage for s in stages] == [1, 2, 3]
    assert all(s.judgments_per_item == 3 and s.lease_seconds == 900 for s in stages)
    assert not any(s.gate_on_previous_stage for s in stages)


def test_seed_creates_guideline_v1_per_stage_from_the_study_definitions(demo: seed.DemoSeed) -> None:
    guidelines = {g.stage: g for g in Guideline.objects.filter(study=demo.study)}
    assert set(guidelines) == {1, 2, 3}
    assert all(g.version == 1 and g.text == GUIDELINES_V1[g.stage] for g in guidelines.values())
    assert all(g.created_by == demo.researcher for g in guidelines.values())
    stage1 = guidelines[Stage.CORRECTNESS].text
    assert "Makes sense" in stage1 and "Maybe" in stage1 and "Doesn't make sense" in stage1
    assert "over-generalization from a single mention" in stage1
    stage2 = guidelines[Stage.RELEVANCE].text
    assert "explicitly or implicitly" in stage2 and "YES" in stage2 and "NO" in stage2
    stage3 = guidelines[Stage.PREFERENCE].text
    assert "3: no difference" in stage3
    assert "Mentioning an attribute does not by itself make a response better" in stage3


def test_seed_imports_subjects_conversations_attributes_and_prompts(demo: seed.DemoSeed) -> None:
    subjects = Subject.objects.filter(study=demo.study)
    assert subjects.count() == 12
    assert all(s.conversations.count() >= 3 for s in subjects)
    assert Conversation.objects.filter(subject__study=demo.study, turns__isnull=True).count() == 0
    merged = Attribute.objects.filter(subject__study=demo.study, level=Attribute.Level.MERGED)
    assert merged.count() >= 36
    assert merged.filter(origin=Attribute.Origin.IMPORTED, model_run__isnull=True).count() == merged.count()
    assert merged.filter(evidence_turns__isnull=True).count() == 0
    prompts = Prompt.objects.filter(study=demo.study)
    assert prompts.count() >= 15
    assert set(prompts.values_list("source", flat=True)) == {"demo"}
    assert [r.kind for r in demo.imports] == ["conversations", "conversations", "attributes", "prompts"]


def test_synthetic_subjects_are_flagged_and_tagged(demo: seed.DemoSeed) -> None:
    subjects = Subject.objects.filter(study=demo.study)
    synthetic = subjects.filter(is_synthetic=True)
    assert synthetic.count() == 3
    assert set(synthetic.values_list("source", flat=True)) == {"synthetic-personas"}
    assert set(subjects.filter(is_synthetic=False).values_list("source", flat=True)) == {"wildchat-demo"}
    assert subjects.filter(is_synthetic=False).count() == 9


def test_seeding_twice_changes_no_counts(demo: seed.DemoSeed) -> None:
    before = row_counts()
    again = seed.seed_demo()
    assert row_counts() == before
    assert again.study == demo.study
    assert all(not any(report.created.values()) for report in again.imports)


def test_seeding_again_resets_demo_passwords_but_keeps_researcher_changes(demo: seed.DemoSeed) -> None:
    researcher = demo.researcher
    researcher.set_password("something-else-entirely")
    researcher.save()
    Study.objects.filter(pk=demo.study.pk).update(status=Study.Status.CLOSED)
    Guideline.objects.create(study=demo.study, stage=Stage.CORRECTNESS, version=2, text="Revised")
    StudyStage.objects.filter(study=demo.study, stage=Stage.RELEVANCE).update(judgments_per_item=5)

    seed.seed_demo()

    researcher.refresh_from_db()
    assert researcher.check_password("researcher-demo")
    demo.study.refresh_from_db()
    assert demo.study.status == Study.Status.CLOSED
    assert Guideline.objects.filter(study=demo.study, stage=Stage.CORRECTNESS).count() == 2
    assert StudyStage.objects.get(study=demo.study, stage=Stage.RELEVANCE).judgments_per_item == 5


@pytest.mark.parametrize(
    ("changelist", "shows"),
    [
        ("/admin/personalization/subject/", "external_id"),
        ("/admin/personalization/conversation/", "conversation_hash"),
        ("/admin/personalization/attribute/", "attribute_text"),
    ],
)
def test_researcher_logs_in_and_sees_demo_data_in_admin_changelists(
    demo: seed.DemoSeed, changelist: str, shows: str
) -> None:
    client = Client()
    response = client.post("/accounts/login/", {"username": "researcher", "password": "researcher-demo"}, follow=False)
    assert response.status_code == 302, "the printed demo login must work"

    subject = Subject.objects.filter(study=demo.study, source="wildchat-demo").order_by("id").first()
    assert subject is not None
    conversation = subject.conversations.order_by("id").first()
    assert conversation is not None
    known = {
        "external_id": subject.external_id,
        "conversation_hash": conversation.conversation_hash,
        "attribute_text": "Is a professional chef",
    }[shows]
    query = "subject__study__id__exact" if "subject/" not in changelist else "study__id__exact"
    response = client.get(f"{changelist}?{query}={demo.study.pk}&q={known}")
    assert response.status_code == 200
    assert known in response.content.decode()


def test_researcher_opens_a_demo_conversation_with_its_turns_in_admin(demo: seed.DemoSeed) -> None:
    client = Client()
    assert client.login(username="researcher", password="researcher-demo")
    conversation = Conversation.objects.filter(subject__study=demo.study).order_by("id").first()
    assert conversation is not None
    response = client.get(f"/admin/personalization/conversation/{conversation.pk}/change/")
    assert response.status_code == 200
    first_turn = conversation.turns.order_by("index").first()
    assert first_turn is not None
    # Conversation text is untrusted: the admin shows it escaped.
    assert escape(first_turn.content[:40]) in response.content.decode()


def test_demo_annotators_cannot_use_the_admin(demo: seed.DemoSeed) -> None:
    client = Client()
    assert client.login(username="annotator1", password="annotator-demo")
    response = client.get("/admin/personalization/subject/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_command_prints_logins_url_warning_and_counts(db: None) -> None:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    assert "http://127.0.0.1:8000/" in text
    for account, password in [
        ("researcher", "researcher-demo"),
        ("annotator1", "annotator-demo"),
        ("annotator2", "annotator-demo"),
        ("annotator3", "annotator-demo"),
    ]:
        assert account in text and password in text
    assert "demo use only" in text
    assert "subjects               12" in text
    assert "synthetic subjects     3" in text


def test_command_twice_reports_everything_already_present(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "created 0 subjects, 0 conversations, 0 turns" in out.getvalue()
    assert "created 0 prompts" in out.getvalue()


def test_command_refuses_production_settings_without_explicit_flag(db: None) -> None:
    with override_settings(SETTINGS_MODULE="annotate.settings.production"):
        with pytest.raises(CommandError, match="published passwords"):
            call_command("seed_demo", stdout=StringIO())
    assert not User.objects.filter(username="researcher").exists()
    assert not Study.objects.exists()


def test_command_pairs_prompts_and_builds_stage_1_and_2_items_once(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    study = Study.objects.get(name=seed.DEMO_STUDY_NAME)
    assert study.pairing_seed == DEMO_PAIRING_SEED
    pairs = SubjectPrompt.objects.filter(subject__study=study).count()
    items = {stage: Item.objects.filter(study=study, stage=stage).count() for stage in Stage}
    assert pairs >= 12
    assert items[Stage.CORRECTNESS] == 12
    assert items[Stage.RELEVANCE] >= 12
    # Stage 3 compares generated responses; the demo has none until its model runs finish.
    assert items[Stage.PREFERENCE] == 0

    before = row_counts()
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert row_counts() == before
    assert Item.objects.filter(study=study).count() == sum(items.values())
    assert f"stage 1 items          {items[Stage.CORRECTNESS]}" in out.getvalue()


@pytest.mark.parametrize("stage", [Stage.CORRECTNESS, Stage.RELEVANCE])
def test_demo_annotator_gets_work_right_after_seeding(db: None, stage: Stage) -> None:
    call_command("seed_demo", stdout=StringIO())
    study = Study.objects.get(name=seed.DEMO_STUDY_NAME)
    annotator = User.objects.get(username="annotator1")

    assignment = assignment_next(study=study, stage=stage, annotator=annotator)

    assert assignment is not None
    payload = assignment_payload(assignment=assignment)
    assert payload["guidelines"]["version"] == 1
    assert payload["attributes"]
    if stage == Stage.CORRECTNESS:
        assert payload["conversations"] and payload["conversations"][0]["turns"]
    else:
        assert payload["prompt"]["text"]

"""Every admin page loads for a superuser: changelist, add and change pages of every registered
model, and the study's import page. Data comes in through the importers, as a researcher's would."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.db.models import Model
from django.http import HttpRequest
from django.test import Client, RequestFactory
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from annotate.models import Assignment, Item
from judgments.models import ItemFeedback, Judgment, JudgmentRevision
from personalization import models as m
from personalization.importers import attributes_import, prompts_import
from tests.importers.conftest import WriteFile


@pytest.fixture
def populated(imported_study: m.Study, superuser: User, annotator: User, write_file: WriteFile) -> m.Study:
    """At least one row of every model the admin shows."""
    study = imported_study
    line = {
        "user_id": "ip-a",
        "merged_attributes": [
            {
                "attribute": "Is vegetarian <script>alert(1)</script>",
                "original_attributes": ["Cooks lasagna"],
                "evidence": [{"conversation_hash": "h-1", "turn_index": 0}],
            }
        ],
    }
    attributes_import(study=study, path=write_file("a.jsonl", [line]))
    prompts_import(study=study, path=write_file("p.jsonl", [{"text": "Plan a weekend trip"}]))
    subject = m.Subject.objects.get(external_id="ip-a")
    attribute = m.Attribute.objects.get(level=m.Attribute.Level.MERGED)
    pair = m.SubjectPrompt.objects.create(subject=subject, prompt=m.Prompt.objects.get())
    m.Response.objects.create(pair=pair, mode=m.Response.Mode.GENERIC, text="A generic answer.")
    run = m.ModelRun.objects.create(
        study=study, step=m.ModelRun.Step.EXTRACT, model_name="tiny", model_id="t/t", backend="hf_local"
    )
    m.ModelRunItem.objects.create(run=run, input_key="conv:1")
    m.RegisteredModel.objects.create(name="tiny", backend=m.RegisteredModel.Backend.HF_LOCAL, model_id="/models/tiny")
    item = Item.objects.create(study=study, stage=1, subject=subject)
    item.attributes.add(attribute)
    Assignment.objects.create(
        item=item, study=study, stage=1, annotator=annotator, lease_expires_at=timezone.now() + timedelta(minutes=15)
    )
    judgment = Judgment.objects.create(
        study=study, stage=1, annotator=annotator, subject=subject, attribute=attribute, answer="makes_sense"
    )
    JudgmentRevision.objects.create(judgment=judgment, answer="maybe")
    ItemFeedback.objects.create(study=study, stage=1, annotator=annotator, subject=subject, note="Fine")
    Group.objects.create(name="Researchers")
    Token.objects.create(user=superuser)
    return study


@pytest.fixture
def root_client(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def _registered() -> list[type[Model]]:
    return sorted(admin.site._registry, key=lambda model: model._meta.label)


def _admin_url(model: type[Model], view: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _request_for_root() -> HttpRequest:
    request = RequestFactory().get("/admin/")
    request.user = User.objects.get(username="root")
    return request


@pytest.mark.parametrize("model", _registered(), ids=lambda model: model._meta.label)
def test_changelist_add_and_change_pages_load(model: type[Model], populated: m.Study, root_client: Client) -> None:
    model_admin = admin.site._registry[model]
    request = _request_for_root()
    row = model_admin.get_queryset(request).first()
    assert row is not None, f"add a {model._meta.label} row to the `populated` fixture so its change page is tested"

    assert root_client.get(_admin_url(model, "changelist")).status_code == 200
    try:
        add_url = _admin_url(model, "add")
    except NoReverseMatch:  # a read-only admin may remove the add view entirely
        add_url = None
    if add_url is not None:
        expected = 200 if model_admin.has_add_permission(request) else 403
        assert root_client.get(add_url).status_code == expected
    assert root_client.get(_admin_url(model, "change", row.pk)).status_code == 200


def test_study_import_page_loads(populated: m.Study, root_client: Client) -> None:
    response = root_client.get(reverse("admin:personalization_study_import", args=[populated.pk]))
    assert response.status_code == 200
    assert b'enctype="multipart/form-data"' in response.content


def test_conversation_and_attribute_text_is_escaped(populated: m.Study, root_client: Client) -> None:
    attribute = m.Attribute.objects.get(level=m.Attribute.Level.MERGED)
    response = root_client.get(_admin_url(m.Attribute, "change", attribute.pk))
    assert b"<script>alert(1)</script>" not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content


def test_imported_data_shows_in_the_changelists(populated: m.Study, root_client: Client, wildchat_file: Path) -> None:
    subjects = root_client.get(_admin_url(m.Subject, "changelist")).content.decode()
    conversations = root_client.get(_admin_url(m.Conversation, "changelist")).content.decode()
    assert "ip-a" in subjects and "ip-b" in subjects
    for line in wildchat_file.read_text().splitlines():
        assert json.loads(line)["conversation_hash"] in conversations

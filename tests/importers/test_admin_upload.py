"""The study admin's "Import data" page: owners (and superusers) import; others get 404 or 403."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from personalization.models import Conversation, Prompt, Study, Subject
from tests.importers.helpers import counts


def grant_study_admin(user: User) -> None:
    """What the demo's Researchers group gives: the right to view and change studies."""
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_study", "change_study"]))


def import_url(study: Study) -> str:
    return reverse("admin:personalization_study_import", args=[study.pk])


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


@pytest.fixture
def researcher_client(owner: User, owner_client: Client) -> Client:
    grant_study_admin(owner)
    return owner_client


def test_change_page_links_to_the_import_page(researcher_client: Client, study: Study) -> None:
    response = researcher_client.get(reverse("admin:personalization_study_change", args=[study.pk]))
    assert response.status_code == 200
    assert import_url(study).encode() in response.content
    assert b"Import data" in response.content


def test_owner_uploads_conversations_and_sees_the_counts(
    researcher_client: Client, study: Study, wildchat_file: Path
) -> None:
    data = {"kind": "conversations", "format": "wildchat", "source": "wc-admin", "is_synthetic": "on"}
    response = researcher_client.post(
        import_url(study), {**data, "file": upload("wc.jsonl", wildchat_file.read_bytes())}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("admin:personalization_study_change", args=[study.pk])
    assert "Imported wc.jsonl: conversations: 3 lines read; created 2 subjects, 3 conversations, 7 turns" in (
        response.content.decode()
    )
    assert Conversation.objects.filter(subject__study=study).count() == 3
    assert set(Subject.objects.values_list("source", "is_synthetic")) == {("wc-admin", True)}


def test_owner_uploads_prompts_csv(researcher_client: Client, study: Study) -> None:
    data = {"kind": "prompts", "format": "auto", "source": "lima", "file": upload("p.csv", b"text\nPlan a trip\n")}
    response = researcher_client.post(import_url(study), data)
    assert response.status_code == 302
    assert Prompt.objects.get(study=study).source == "lima"


def test_rejected_file_lists_its_errors_escaped_and_stores_nothing(researcher_client: Client, study: Study) -> None:
    bad = b'{"user": "u1", "messages": [{"role": "<b>boss</b>", "content": "hi"}]}\n{oops\n'
    before = counts()
    response = researcher_client.post(import_url(study), {"kind": "conversations", "file": upload("bad.jsonl", bad)})
    assert response.status_code == 200
    page = response.content.decode()
    assert "rejected (2 errors); nothing was imported" in page
    assert "bad.jsonl:1: messages[0].role: unknown role &#x27;&lt;b&gt;boss&lt;/b&gt;&#x27;" in page
    assert "bad.jsonl:2: (json): malformed JSON" in page
    assert "<b>boss</b>" not in page
    assert counts() == before


def test_format_must_suit_the_kind(researcher_client: Client, study: Study) -> None:
    data = {"kind": "attributes", "format": "csv", "file": upload("a.csv", b"x\n")}
    response = researcher_client.post(import_url(study), data)
    assert response.status_code == 200
    assert "Attributes imports accept: auto." in response.content.decode()


def test_staff_who_does_not_own_the_study_gets_404(study: Study, wildchat_file: Path) -> None:
    other = User.objects.create_user("other-researcher", password="pw-other-123", is_staff=True)
    grant_study_admin(other)
    client = Client()
    client.force_login(other)
    before = counts()
    assert client.get(import_url(study)).status_code == 404
    response = client.post(
        import_url(study), {"kind": "conversations", "file": upload("w.jsonl", wildchat_file.read_bytes())}
    )
    assert response.status_code == 404
    assert counts() == before


def test_owner_without_change_permission_is_refused(owner_client: Client, study: Study) -> None:
    assert owner_client.get(import_url(study)).status_code == 403


def test_non_staff_member_is_sent_to_the_admin_login(annotator_client: Client, study: Study) -> None:
    response = annotator_client.get(import_url(study))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_superuser_may_import_into_any_study(study: Study, wildchat_file: Path) -> None:
    root = User.objects.create_superuser("root", password="pw-root-123")
    client = Client()
    client.force_login(root)
    response = client.post(
        import_url(study), {"kind": "conversations", "file": upload("w.jsonl", wildchat_file.read_bytes())}
    )
    assert response.status_code == 302
    assert Conversation.objects.count() == 3
